CREATE TABLE paths (p TEXT);
INSERT INTO paths VALUES ('C:\dir\');
INSERT INTO paths VALUES ('a\'), ('b;c');
SELECT p FROM paths WHERE p = 'C:\dir\'
