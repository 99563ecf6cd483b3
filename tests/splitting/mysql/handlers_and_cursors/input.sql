-- Handlers (with a BEGIN ... END body or a single statement, itself possibly
-- compound) and cursors.
CREATE TABLE hc_source (n INT);
CREATE TABLE hc_log (what VARCHAR(20), n INT);
INSERT INTO hc_source VALUES (1), (2), (3);

CREATE PROCEDURE hc_cursor()
BEGIN
  DECLARE done INT DEFAULT FALSE;
  DECLARE v INT;
  DECLARE total INT DEFAULT 0;
  DECLARE c CURSOR FOR SELECT n FROM hc_source ORDER BY n;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN c;
  read_loop: LOOP
    FETCH c INTO v;
    IF done THEN
      LEAVE read_loop;
    END IF;
    SET total = total + v;
  END LOOP;
  CLOSE c;
  FOR r IN (SELECT n FROM hc_source WHERE n > 1) DO
    SET total = total + r.n;
  END FOR;
  INSERT INTO hc_log VALUES ('cursor', total);
END;

CREATE PROCEDURE hc_handlers()
BEGIN
  DECLARE state INT DEFAULT 0;
  DECLARE no_such_table CONDITION FOR SQLSTATE '42S02';
  DECLARE CONTINUE HANDLER FOR SQLSTATE VALUE '23000', 1062 SET state = 1;
  DECLARE CONTINUE HANDLER FOR no_such_table
    IF state = 0 THEN
      SET state = 2;
    ELSE
      SET state = 3;
    END IF;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    INSERT INTO hc_log VALUES ('exit handler', state);
  END;
  SELECT COUNT(*) INTO state FROM missing_table;
  INSERT INTO hc_log VALUES ('after missing', state);
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'to the exit handler';
END;

CREATE PROCEDURE hc_warning()
BEGIN
  DECLARE d INT DEFAULT 0;
  DECLARE CONTINUE HANDLER FOR SQLWARNING, NOT FOUND
    CASE WHEN d = 0 THEN SET d = 1; ELSE SET d = 2; END CASE;
  DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN END;
  SELECT n INTO d FROM hc_source WHERE n > 100;
  INSERT INTO hc_log VALUES ('warning', d);
END;

CALL hc_cursor();
CALL hc_handlers();
CALL hc_warning();
SELECT what, n FROM hc_log;
