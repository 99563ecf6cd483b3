CREATE TABLE paths (p text);
INSERT INTO paths VALUES ('C:\dir\');
INSERT INTO paths VALUES ('it''s; fine'), (U&'d\0061t\+000061;');
SELECT p FROM paths WHERE p <> 'x\';
