CREATE TABLE ev (begin INTEGER, end INTEGER, "case" INTEGER);
INSERT INTO ev (begin, end, "case") VALUES (1, 2, 3);
SELECT begin, end FROM ev WHERE end > begin;
UPDATE ev SET end = end + 1;
