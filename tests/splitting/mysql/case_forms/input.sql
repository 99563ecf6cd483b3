-- CASE statements (END CASE) and CASE expressions (END), with IF() in both.
CREATE TABLE case_log (v INT, label VARCHAR(20));

CREATE PROCEDURE case_simple(IN v INT)
BEGIN
  CASE v
    WHEN 1 THEN INSERT INTO case_log VALUES (v, 'one');
    WHEN 2 THEN
      BEGIN
        INSERT INTO case_log VALUES (v, 'two');
      END;
    ELSE
      IF v > 2 THEN INSERT INTO case_log VALUES (v, 'many'); END IF;
  END CASE;
END;

CREATE PROCEDURE case_searched(IN v INT)
BEGIN
  DECLARE label VARCHAR(20);
  SET label = CASE WHEN v > 0 THEN IF(v > 5, 'big', 'small') ELSE IF (v < 0, 'neg', 'zero') END;
  CASE
    WHEN v > 5 THEN
      INSERT INTO case_log VALUES (v, CASE WHEN v > 9 THEN 'huge' ELSE label END);
    WHEN CASE WHEN v < 0 THEN 1 ELSE 0 END = 1 THEN
      INSERT INTO case_log VALUES (v, 'negative');
    ELSE
      INSERT INTO case_log SELECT v, (CASE v WHEN 0 THEN 'zero' ELSE label END);
  END CASE;
  DO IF(v > 0, 1, 0);
END;

CALL case_simple(1);
CALL case_simple(2);
CALL case_simple(3);
CALL case_searched(7);
CALL case_searched(-1);
CALL case_searched(0);
SELECT v, CASE WHEN v > 1 THEN 'x' END AS c FROM case_log;
