"""MySQL/MariaDB compound statements: each routine, trigger or event is one statement.

Every body is split three ways: with plain ";" inside it (as Go and Java drivers
send it, so the block tracker must find its end), as the last statement with no
";" after it, and under ``DELIMITER $$`` / ``DELIMITER //``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import ScratchDatabase, write_version
from sibila_sqlmig.splitting import split_sql

BODIES = {
    "if": "CREATE PROCEDURE p(v INT) BEGIN IF v > 0 THEN SELECT 1; END IF; END",
    "if_exists": "CREATE PROCEDURE p() BEGIN\n  IF EXISTS (SELECT 1 FROM t) THEN\n"
                 "    DELETE FROM t;\n  END IF;\nEND",
    "if_not_exists": "CREATE PROCEDURE p() BEGIN IF NOT EXISTS(SELECT 1) THEN SELECT 1; "
                     "END IF; END",
    "if_not_exists_newlines": "CREATE PROCEDURE p() BEGIN IF\nNOT\n  EXISTS\n(SELECT 1) "
                              "THEN SELECT 1; END\nIF; END",
    "if_exists_lower_case": "create procedure p() begin if exists(select 1) then select 1; "
                            "end if; end",
    "elseif_exists": "CREATE PROCEDURE p() BEGIN IF 0 THEN SELECT 0; ELSEIF EXISTS(SELECT 1) "
                     "THEN SELECT 1; ELSE SELECT 2; END IF; END",
    "else_if_nested": "CREATE PROCEDURE p(v INT) BEGIN IF v THEN SELECT 1; ELSE IF EXISTS"
                      "(SELECT 1) THEN SELECT 2; END IF; END IF; END",
    "if_subquery_condition": "CREATE PROCEDURE p() BEGIN IF (SELECT COUNT(*) FROM t) > 0 "
                             "THEN SELECT 1; END IF; END",
    "if_function": "CREATE PROCEDURE p(v INT) BEGIN DECLARE x INT DEFAULT IF(v, 1, 2); "
                   "SET x = IF (v > 1, IF(v > 2, 3, 2), x); SELECT IF(x, 'a;', 'b'); END",
    "if_function_in_condition": "CREATE PROCEDURE p(v INT) BEGIN IF IF(v, 1, 0) = 1 THEN "
                                "SELECT 1; END IF; END",
    "do_if_function": "CREATE PROCEDURE p() BEGIN DO IF(1, 2, 3); WHILE 0 DO DO IF(1, 2, 3); "
                      "END WHILE; END",
    "case_statement": "CREATE PROCEDURE p(v INT) BEGIN CASE v WHEN 1 THEN SELECT 1; "
                      "ELSE IF v THEN SELECT 2; END IF; END CASE; END",
    "searched_case_statement": "CREATE PROCEDURE p(v INT) BEGIN CASE WHEN v > 0 THEN SELECT 1; "
                               "WHEN v < 0 THEN BEGIN SELECT 2; END; ELSE SELECT 3; END CASE; END",
    "case_expressions": "CREATE PROCEDURE p(v INT) BEGIN SET v = CASE WHEN v THEN IF(v, 1, 2) "
                        "ELSE IF(v, 3, 4) END; SELECT (CASE v WHEN 1 THEN 'a' END); END",
    "loop_labelled": "CREATE PROCEDURE p() BEGIN lbl: LOOP LEAVE lbl; END LOOP lbl; END",
    "loop_label_colon_apart": "CREATE PROCEDURE p() BEGIN lbl :LOOP LEAVE lbl; END LOOP lbl; END",
    "begin_labelled": "CREATE PROCEDURE p() outer_b: BEGIN inner_b: BEGIN LEAVE inner_b; "
                      "END inner_b; END outer_b",
    "while": "CREATE PROCEDURE p() BEGIN DECLARE i INT DEFAULT 0; w: WHILE(i < 3) DO "
             "SET i = i + 1; END WHILE w; END",
    "repeat": "CREATE PROCEDURE p() BEGIN DECLARE i INT DEFAULT 0; REPEAT SET i = i + 1; "
              "UNTIL i > 3 END REPEAT; SELECT REPEAT('x', i); END",
    "for_loop": "CREATE PROCEDURE p() BEGIN FOR i IN 1..3 DO SELECT i; END FOR; END",
    "handler_begin": "CREATE PROCEDURE p() BEGIN DECLARE EXIT HANDLER FOR SQLEXCEPTION "
                     "BEGIN ROLLBACK; END; SELECT 1; END",
    "handler_not_found": "CREATE PROCEDURE p() BEGIN DECLARE done INT DEFAULT 0; "
                         "DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1; END",
    "handler_if": "CREATE PROCEDURE p() BEGIN DECLARE d INT; DECLARE CONTINUE HANDLER FOR "
                  "SQLSTATE VALUE '02000', 1329 IF d THEN SET d = 0; END IF; SELECT d; END",
    "handler_case": "CREATE PROCEDURE p() BEGIN DECLARE d INT; DECLARE CONTINUE HANDLER FOR "
                    "SQLWARNING CASE WHEN d THEN SET d = 0; END CASE; SELECT d; END",
    "cursor": "CREATE PROCEDURE p() BEGIN DECLARE v INT; DECLARE c CURSOR FOR SELECT a FROM t "
              "FOR UPDATE; OPEN c; FETCH c INTO v; CLOSE c; END",
    "ddl_in_body": "CREATE PROCEDURE p() BEGIN DROP TABLE IF EXISTS x; CREATE TABLE IF NOT "
                   "EXISTS x (a INT NOT NULL); ALTER TABLE x ADD COLUMN IF NOT EXISTS b INT; END",
    "trigger": "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN IF NEW.a < 0 THEN "
               "SET NEW.a = 0; END IF; END",
    "trigger_bare_if": "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW IF NEW.a < 0 THEN "
                       "SET NEW.a = 0; END IF",
    "trigger_if_not_exists": "CREATE TRIGGER IF NOT EXISTS tr BEFORE INSERT ON t FOR EACH ROW "
                             "BEGIN IF EXISTS (SELECT 1) THEN SET NEW.a = 0; END IF; END",
    "event": "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN IF EXISTS(SELECT 1 FROM t) THEN "
             "DELETE FROM t; END IF; END",
    "event_bare_if": "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO IF 1 THEN DELETE FROM t; END IF",
    "function": "CREATE FUNCTION f(v INT) RETURNS INT DETERMINISTIC BEGIN IF v IS NULL THEN "
                "RETURN 0; END IF; RETURN v * 2; END",
    "function_bare_if": "CREATE FUNCTION f(v INT) RETURNS VARCHAR(3) CHARSET utf8mb4 "
                        "DETERMINISTIC IF v THEN RETURN 'yes'; ELSE RETURN 'no'; END IF",
    "function_bare_case": "CREATE FUNCTION f(v INT) RETURNS INT CASE v WHEN 1 THEN RETURN 1; "
                          "ELSE RETURN 0; END CASE",
    "procedure_bare_loop": "CREATE PROCEDURE p() lbl: LOOP LEAVE lbl; END LOOP lbl",
    "procedure_bare_repeat": "CREATE PROCEDURE p() REPEAT SELECT 1; UNTIL 1 END REPEAT",
    "procedure_if_not_exists_bare_if": "CREATE PROCEDURE IF NOT EXISTS p() IF (1) THEN "
                                       "SELECT 1; END IF",
    "definer": "CREATE DEFINER=`root`@`localhost` PROCEDURE p() BEGIN IF EXISTS(SELECT 1) "
               "THEN SELECT 'a;b'; END IF; END",
    "or_replace": "CREATE OR REPLACE PROCEDURE p() BEGIN IF NOT EXISTS(SELECT 1) THEN "
                  "SELECT 1; END IF; END",
    "begin_not_atomic": "BEGIN NOT ATOMIC IF EXISTS(SELECT 1) THEN SELECT 1; END IF; END",
    "comments_and_strings": "CREATE PROCEDURE p() BEGIN -- END IF; END;\n  IF 1 THEN "
                            "SELECT 'END;' /* END IF; */; END IF; # END;\nEND",
}

# One-statement routine bodies: what follows them must stay a statement of its own.
SIMPLE_BODIES = {
    "function_return_if": "CREATE FUNCTION f(v INT) RETURNS INT DETERMINISTIC "
                          "RETURN IF(v > 0, 1, 0)",
    "function_return_case": "CREATE FUNCTION f(v INT) RETURNS INT "
                            "RETURN CASE WHEN v THEN IF(v, 1, 2) END",
    "procedure_drop_if_exists": "CREATE PROCEDURE p() DROP TABLE IF EXISTS t",
    "trigger_set_if": "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW "
                      "SET NEW.a = IF(NEW.a, 1, 0)",
    "trigger_insert_case": "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW "
                           "INSERT INTO log VALUES (CASE WHEN NEW.a THEN 1 END)",
}


def _split(text: str) -> list[str]:
    return [statement.sql for statement in split_sql(text, "mysql")]


@pytest.mark.parametrize("body", [*BODIES.values(), *SIMPLE_BODIES.values()],
                         ids=[*BODIES, *SIMPLE_BODIES])
@pytest.mark.parametrize("form", ["plain", "last", "dollars", "slashes"])
def test_a_compound_statement_is_one_statement(body: str, form: str) -> None:
    before, after = "CREATE TABLE t (a INT)", "SELECT IF(1, 2, 3)"
    if form == "plain":
        text, expected = f"{before};\n{body};\n{after};\n", [before, body, after]
    elif form == "last":
        text, expected = f"{before};\n{body}\n", [before, body]
    else:
        delimiter = "$$" if form == "dollars" else "//"
        text = (f"{before};\nDELIMITER {delimiter}\n{body}{delimiter}\n{after}{delimiter}\n"
                f"DELIMITER ;\n{after};\n")
        expected = [before, body, after, after]
    assert _split(text) == expected


def test_routines_one_after_another_without_delimiter() -> None:
    text = ";\n".join(BODIES.values()) + ";\n"
    assert _split(text) == list(BODIES.values())


UP = """CREATE TABLE flags (name VARCHAR(20) PRIMARY KEY, hits INT NOT NULL);
INSERT INTO flags VALUES ('a', 0);
{delimiter_on}CREATE PROCEDURE bump(IN flag VARCHAR(20))
BEGIN
  IF EXISTS (SELECT 1 FROM flags WHERE name = flag) THEN
    UPDATE flags SET hits = hits + 1 WHERE name = flag;
  ELSEIF NOT EXISTS (SELECT 1 FROM flags WHERE hits > 100) THEN
    INSERT INTO flags VALUES (flag, 10);
  END IF;
END{delimiter}
{delimiter_off}CALL bump('a');
CALL bump('a');
CALL bump('b');
"""


@pytest.mark.parametrize("with_delimiter", [False, True], ids=["plain", "delimiter"])
def test_a_procedure_using_if_exists_runs_on_the_engine(
        mysql_db: ScratchDatabase, tmp_path: Path, cli: Any, with_delimiter: bool) -> None:
    up = UP.format(delimiter_on="DELIMITER $$\n" if with_delimiter else "",
                   delimiter="$$" if with_delimiter else ";",
                   delimiter_off="DELIMITER ;\n" if with_delimiter else "")
    folder = tmp_path / "migrations"
    write_version(folder, "001_flags", up)
    result = cli("migrate", "--database", mysql_db.url, "--migrations", str(folder))
    assert result.code == 0, result.err
    assert sorted(mysql_db.rows("SELECT name, hits FROM flags")) == [("a", 2), ("b", 10)]
