CREATE TABLE ev (begin int, "end" int, "case" int, "a;b" int);
CREATE TABLE ev_log (n int);
CREATE RULE ev_log_rule AS ON INSERT TO ev DO ALSO (
  INSERT INTO ev_log VALUES (1);
  INSERT INTO ev_log VALUES (2)
);
INSERT INTO ev (begin, "end") VALUES (1, 2);
SELECT begin, "end", "a;b" FROM ev;
