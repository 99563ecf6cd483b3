CREATE TABLE ev (id INTEGER PRIMARY KEY, begin INTEGER, end INTEGER, kind TEXT);
CREATE TABLE ev_log (msg TEXT);
CREATE TRIGGER ev_after_insert AFTER INSERT ON ev
BEGIN
  INSERT INTO ev_log VALUES (CASE WHEN new.end > new.begin THEN 'forward; ok' ELSE 'back' END);
  UPDATE ev SET kind = CASE new.kind WHEN 'a' THEN 'A' ELSE 'Z' END WHERE id = new.id;
END;
CREATE TEMP TRIGGER IF NOT EXISTS ev_delete BEFORE DELETE ON ev BEGIN
  SELECT RAISE(ABORT, 'no deletes; ever');
END;
INSERT INTO ev (begin, end, kind) VALUES (1, 2, 'a');
