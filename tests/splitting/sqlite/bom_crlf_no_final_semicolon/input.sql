-- BOM, CRLF, no final semicolon
CREATE TABLE w (a INTEGER);
INSERT INTO w
VALUES (1);
SELECT a FROM w -- trailing comment