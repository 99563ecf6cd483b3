-- MariaDB runs compound statements outside a routine; no DELIMITER here.
CREATE TABLE flags (name VARCHAR(20), n INT);
IF NOT EXISTS (SELECT 1 FROM flags WHERE name = 'a') THEN
  INSERT INTO flags VALUES ('a', 1);
ELSE
  UPDATE flags SET n = n + 1 WHERE name = 'a';
END IF;
REPEAT
  INSERT INTO flags VALUES ('loop', 1);
UNTIL (SELECT COUNT(*) FROM flags WHERE name = 'loop') >= 2 END REPEAT;
CASE WHEN (SELECT COUNT(*) FROM flags) > 1 THEN
  INSERT INTO flags VALUES ('case', 2);
ELSE
  INSERT INTO flags VALUES ('case', 0);
END CASE;
CREATE DEFINER = 'root'@'localhost' PROCEDURE spaced_definer()
BEGIN
  SELECT 1;
  SELECT 2;
END;
SELECT IF(COUNT(*) > 2, 'many', 'few') FROM flags;
