CREATE TABLE ev (id int, "end" int);
CREATE FUNCTION classify(v int) RETURNS text
LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN v > 0 THEN 'positive; yes' ELSE 'other' END;
END;
CREATE PROCEDURE log_end(v int)
LANGUAGE sql
BEGIN ATOMIC
  INSERT INTO ev VALUES (v, CASE v WHEN 1 THEN 2 END);
  UPDATE ev SET "end" = v WHERE id = v;
END;
SELECT classify(1);
