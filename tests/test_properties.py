"""Property tests: splitting round-trips generated statements; the fast YAML reader
agrees with yaml.safe_load."""

from __future__ import annotations

import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sibila_sqlmig.splitting import SplitError, has_statement, split_sql
from sibila_sqlmig.sqlfile import normalise_bytes, normalise_text
from sibila_sqlmig.yamlfile import _NOT_SIMPLE, _load_simple

TRICKY = st.text(alphabet=list("ab ;-/*'\"\\$#`[]()\nEND"), max_size=12)


def _literal(dialect: str, text: str, style: int) -> str:
    if dialect == "mysql":
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if dialect == "postgresql" and style == 1:
        return "E'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if dialect == "postgresql" and style == 2 and "$q$" not in text and not text.endswith("$"):
        return "$q$" + text + "$q$"
    return "'" + text.replace("'", "''") + "'"


def _name(dialect: str, text: str) -> str:
    if dialect == "mysql" or (dialect == "sqlite" and "`" in text and '"' not in text):
        return "`" + text.replace("`", "``") + "`"
    return '"' + text.replace('"', '""') + '"'


@st.composite
def statements(draw: st.DrawFn, dialect: str) -> str:
    literal = _literal(dialect, draw(TRICKY), draw(st.integers(0, 2)))
    name = _name(dialect, draw(TRICKY))
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return f"SELECT {literal} AS {name}"
    if kind == 1:
        return f"INSERT INTO {name} VALUES ({literal}, 'x')"
    if kind == 2:
        return f"SELECT CASE WHEN {literal} = 'a' THEN 1 END AS {name}"
    if kind == 3:
        return f"CREATE TABLE t (begin INT, {name} TEXT DEFAULT {literal})"
    if dialect == "sqlite":
        return (f"CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  SELECT {literal};\n"
                f"  UPDATE t SET x = CASE WHEN new.end THEN {literal} END;\nEND")
    if dialect == "postgresql":
        return (f"CREATE FUNCTION f() RETURNS text LANGUAGE sql BEGIN ATOMIC\n"
                f"  SELECT CASE WHEN true THEN {literal} END;\nEND")
    return (f"CREATE PROCEDURE p() BEGIN\n  IF 1 THEN SELECT {literal};\n"
            f"  ELSE REPEAT SET @x = IF (1, 2, 3); UNTIL 1 END REPEAT;\n  END IF;\nEND")


SEPARATORS = {
    "sqlite": [" ", "\n", "\r\n", "\r", "-- c; 'x\n", "/* c; ' */", "\t"],
    "postgresql": [" ", "\n", "\r\n", "-- c; 'x\n", "/* c /* d; */ ' */", "\t"],
    "mysql": [" ", "\n", "\r\n", "-- c; 'x\n", "# c; 'x\n", "/* c; ' */", "\t"],
}


def _round_trip(dialect: str, data: st.DataObject) -> None:
    pieces = data.draw(st.lists(statements(dialect), min_size=1, max_size=6))
    separator = st.lists(st.sampled_from(SEPARATORS[dialect]), max_size=3).map("".join)
    text = data.draw(separator)
    for piece in pieces:
        text += piece + ";" + data.draw(separator)
    if data.draw(st.booleans()):
        text = "\ufeff" + text
    split = split_sql(text, dialect)
    assert [statement.sql for statement in split] == pieces
    normalised = normalise_text(text)
    for statement in split:
        assert normalised[statement.offset:].startswith(statement.sql)
        assert statement.line == normalised.count("\n", 0, statement.offset) + 1


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_sqlite_statements_split_back_to_themselves(data: st.DataObject) -> None:
    _round_trip("sqlite", data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_postgresql_statements_split_back_to_themselves(data: st.DataObject) -> None:
    _round_trip("postgresql", data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_mysql_statements_split_back_to_themselves(data: st.DataObject) -> None:
    _round_trip("mysql", data)


YAML_VALUES = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + " _.,()/'-:#\"\\!&*[]{}|>%@`?~",
            max_size=20),
    st.sampled_from(["true", "false", "True", "yes", "no", "on", "off", "null", "~", "1",
                     "007", "0x1F", "1.5", "1e3", "2026-11-29", "1:30", '"quoted"', "'single'",
                     "'it''s'", '"esc\\"aped"', "", "  spaced  "]),
)
YAML_KEYS = st.sampled_from(["description", "transaction", "on", "yes", "a_b", "Key", "x"])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(YAML_KEYS, YAML_VALUES), min_size=1, max_size=4),
       st.sampled_from(["\n", ""]))
def test_fast_yaml_reader_agrees_with_safe_load(pairs: list[tuple[str, str]], end: str) -> None:
    text = "\n".join(f"{key}: {value}" for key, value in pairs) + end
    fast = _load_simple(text)
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        assert fast is _NOT_SIMPLE, f"accepted invalid YAML: {text!r}"
        return
    assert fast is _NOT_SIMPLE or fast == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab;\r\n\ufeff\u00e9 ", max_size=30))
def test_text_and_bytes_are_normalised_alike(text: str) -> None:
    """sqlfile normalises bytes (what is hashed) and text (what split_sql is given) by
    the same rule."""
    assert normalise_bytes(text.encode("utf-8")) == normalise_text(text).encode("utf-8")


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(["sqlite", "postgresql", "mysql"]),
       st.lists(st.sampled_from(["-- c\n", "/* c */", "/*!40101 SET NAMES utf8 */", "# c\n",
                                 ";", " ", "\n", "\r\n", "\ufeff", "DELIMITER $$\n",
                                 "delimiter ;\n", "$$", "SELECT 1", "E'x'", "'a'", "x",
                                 "/* /* nested */ */", "--x\n", "(1)"]), max_size=6).map("".join))
def test_has_statement_agrees_with_split_sql(dialect: str, text: str) -> None:
    """has_statement's quick look for a leading keyword never disagrees with the scanner."""
    try:
        expected = bool(split_sql(text, dialect))
    except SplitError:
        return
    assert has_statement(text, dialect) is expected
