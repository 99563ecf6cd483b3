CREATE TABLE `a;b` (`c;d` INT, begin INT, end INT, `case` INT);
INSERT INTO `a;b` (`c;d`, begin, end) VALUES (1, 2, 3);
SELECT begin, end, `c;d` FROM `a;b` WHERE end > begin;
