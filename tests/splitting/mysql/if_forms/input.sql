-- IF in every form, first with plain ";" inside the bodies (no DELIMITER), then
-- the same shapes with DELIMITER $$.
CREATE TABLE if_log (step VARCHAR(20), n INT);
INSERT INTO if_log VALUES ('seed', 1);

CREATE PROCEDURE if_exists_plain(IN v INT)
BEGIN
  IF EXISTS (SELECT 1 FROM if_log WHERE n = v) THEN
    INSERT INTO if_log VALUES ('exists', v);
  ELSEIF EXISTS(SELECT 1 FROM if_log WHERE n = v - 1) THEN
    INSERT INTO if_log VALUES ('elseif exists', v);
  ELSE
    IF NOT EXISTS (SELECT 1 FROM if_log WHERE step = 'none') THEN
      INSERT INTO if_log VALUES ('nested not exists', v);
    END IF;
  END IF;
  IF NOT
     EXISTS(SELECT 1 FROM if_log WHERE n < 0) THEN SET v = v + 1; END IF;
  IF (SELECT COUNT(*) FROM if_log) > 0 THEN
    SET v = IF(v > 1, v, 1);
  END IF;
END;

CREATE PROCEDURE if_function_plain(IN v INT)
BEGIN
  DECLARE r INT DEFAULT IF(v > 0, 1, 0);
  SET r = IF (v > 10, r + IF(v > 20, 2, 1), r);
  IF IF(v > 0, 1, 0) = 1 THEN
    IF v > 1 THEN IF v > 2 THEN SET r = r + 1; END IF; END IF;
  END IF;
  INSERT INTO if_log VALUES ('if function', r);
END;

CALL if_exists_plain(1);
CALL if_exists_plain(2);
CALL if_function_plain(3);

DELIMITER $$
CREATE PROCEDURE if_exists_delim(IN v INT)
BEGIN
  IF EXISTS (SELECT 1 FROM if_log WHERE n = v) THEN
    INSERT INTO if_log VALUES ('exists $$', v);
  ELSEIF NOT EXISTS(SELECT 1 FROM if_log WHERE n = v) THEN
    INSERT INTO if_log VALUES ('missing', IF(v > 0, v, 0));
  END IF;
END$$
CALL if_exists_delim(1)$$
DELIMITER ;

CALL if_exists_delim(7);
SELECT step, n FROM if_log ORDER BY step;
