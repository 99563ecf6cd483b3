CREATE TABLE paths (p TEXT);
INSERT INTO paths VALUES ('it\'s; escaped'), ('C:\\temp\\'), ("dq \"; quoted"), ('it''s');
SELECT p FROM paths WHERE p <> 'a\\';
