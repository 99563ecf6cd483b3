-- LOOP, WHILE, REPEAT and MariaDB's FOR, labelled and not.
CREATE TABLE loop_log (kind VARCHAR(10), n INT);

CREATE PROCEDURE loops_plain(IN upto INT)
outer_block: BEGIN
  DECLARE i INT DEFAULT 0;
  count_up: LOOP
    SET i = i + 1;
    IF i > upto THEN
      LEAVE count_up;
    END IF;
    IF i = 2 THEN ITERATE count_up; END IF;
    INSERT INTO loop_log VALUES ('loop', i);
  END LOOP count_up;
  SET i = 0;
  WHILE i < upto DO
    SET i = i + 1;
    INSERT INTO loop_log VALUES ('while', i);
  END WHILE;
  w2: WHILE(i > 0) DO
    SET i = i - 1;
  END WHILE w2;
  REPEAT
    SET i = i + 1;
  UNTIL i >= upto END REPEAT;
  r2 :REPEAT SET i = i - 1; UNTIL (SELECT COUNT(*) FROM loop_log) > 0 END REPEAT r2;
  inner_block :BEGIN
    LOOP LEAVE inner_block; END LOOP;
  END inner_block;
  FOR j IN 1 .. upto DO
    INSERT INTO loop_log VALUES ('for', j);
  END FOR;
  INSERT INTO loop_log VALUES ('repeat', CHAR_LENGTH(REPEAT('ab', i)));
  LEAVE outer_block;
END outer_block;

CALL loops_plain(3);

DELIMITER //
CREATE PROCEDURE loops_delim()
BEGIN
  DECLARE i INT DEFAULT 0;
  lbl: LOOP
    SET i = i + 1;
    IF i >= 2 THEN LEAVE lbl; END IF;
  END LOOP lbl;
  WHILE i > 0 DO SET i = i - 1; END WHILE;
  REPEAT SET i = i + 1; UNTIL i > 1 END REPEAT;
  INSERT INTO loop_log VALUES ('delim', i);
END //
DELIMITER ;

CALL loops_delim();
CREATE PROCEDURE loop_body_only() lbl: LOOP LEAVE lbl; END LOOP lbl;
CREATE PROCEDURE while_body_only() WHILE 0 DO SELECT 1; END WHILE;
CALL loop_body_only();
SELECT kind, n FROM loop_log;
