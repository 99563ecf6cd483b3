-- a comment; with a semicolon
/* a block; comment */
CREATE TABLE c (a INTEGER); -- trailing; comment
/* only a comment here; */ ;
-- and here
;
INSERT INTO c VALUES (1 /* inline; */);
SELECT a -- not the end;
FROM c;
-- the file ends with a comment;
