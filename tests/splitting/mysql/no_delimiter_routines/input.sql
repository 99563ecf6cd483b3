-- Routines, triggers and events as Go and Java drivers send them: no DELIMITER,
-- plain ";" inside the bodies. The splitter finds where each one ends.
CREATE TABLE nd_items (id INT PRIMARY KEY, qty INT, note VARCHAR(40));
CREATE TABLE nd_audit (id INT, what VARCHAR(40));

CREATE DEFINER=`root`@`localhost` PROCEDURE nd_definer()
BEGIN
  IF EXISTS (SELECT 1 FROM nd_items) THEN
    SELECT 'has rows; really';
  END IF;
END;

CREATE OR REPLACE PROCEDURE nd_restock(IN item INT, IN amount INT)
  COMMENT 'adds; or inserts'
  SQL SECURITY INVOKER
BEGIN
  IF NOT EXISTS (SELECT 1 FROM nd_items WHERE id = item) THEN
    INSERT INTO nd_items VALUES (item, amount, NULL);
  ELSE
    UPDATE nd_items SET qty = qty + amount WHERE id = item;
  END IF;
END;

CREATE FUNCTION nd_double(v INT) RETURNS INT DETERMINISTIC
BEGIN
  DECLARE r INT;
  SET r = v * 2;
  RETURN r;
END;

CREATE FUNCTION nd_sign(v INT) RETURNS VARCHAR(8) CHARSET utf8mb4 DETERMINISTIC
IF v > 0 THEN RETURN 'pos'; ELSEIF v < 0 THEN RETURN 'neg'; ELSE RETURN 'zero'; END IF;

CREATE FUNCTION nd_size(v INT) RETURNS VARCHAR(8) DETERMINISTIC
RETURN CASE WHEN v > 9 THEN IF(v > 99, 'huge', 'big') ELSE 'small' END;

CREATE FUNCTION nd_parity(v INT) RETURNS VARCHAR(4) DETERMINISTIC
CASE v % 2 WHEN 0 THEN RETURN 'even'; ELSE RETURN 'odd'; END CASE;

CREATE TRIGGER nd_items_bi BEFORE INSERT ON nd_items FOR EACH ROW
BEGIN
  IF NEW.qty IS NULL THEN
    SET NEW.qty = 0;
  END IF;
  SET NEW.note = nd_sign(NEW.qty);
END;

CREATE TRIGGER nd_items_bu BEFORE UPDATE ON nd_items FOR EACH ROW
IF NEW.qty < 0 THEN SET NEW.qty = 0; END IF;

CREATE TRIGGER nd_items_bu2 BEFORE UPDATE ON nd_items FOR EACH ROW FOLLOWS nd_items_bu
SET NEW.note = IF(NEW.qty > OLD.qty, 'up', 'down');

CREATE TRIGGER nd_items_ai AFTER INSERT ON nd_items FOR EACH ROW
INSERT INTO nd_audit VALUES (NEW.id, CASE WHEN NEW.qty > 0 THEN 'stocked' ELSE 'empty' END);

CREATE EVENT nd_purge ON SCHEDULE EVERY 1 DAY DISABLE DO
BEGIN
  IF EXISTS (SELECT 1 FROM nd_audit WHERE what = 'empty') THEN
    DELETE FROM nd_audit WHERE what = 'empty';
  END IF;
END;

CREATE EVENT nd_touch ON SCHEDULE EVERY 1 HOUR DISABLE DO
IF (SELECT COUNT(*) FROM nd_items) > 100 THEN DELETE FROM nd_audit; END IF;

BEGIN NOT ATOMIC
  DECLARE i INT DEFAULT 0;
  WHILE i < 2 DO
    SET i = i + 1;
    IF NOT EXISTS (SELECT 1 FROM nd_items WHERE id = i) THEN
      INSERT INTO nd_items (id, qty) VALUES (i, nd_double(i));
    END IF;
  END WHILE;
END;

CALL nd_restock(1, 5);
CALL nd_restock(3, 1);
SELECT id, qty, note, nd_size(qty), nd_parity(qty) FROM nd_items ORDER BY id;
