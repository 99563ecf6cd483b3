"""Statement splitting: golden files per dialect, each also run on the real engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ScratchDatabase
from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.config import load_settings
from sibila_sqlmig.splitting import SplitError, split_sql

GOLDEN = Path(__file__).parent / "splitting"
CASES = sorted(GOLDEN.glob("*/*/input.sql"))
FIXTURE = {"sqlite": "sqlite_db", "postgresql": "postgres_db", "mysql": "mysql_db"}


def _case_id(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.parent.name}"


@pytest.mark.parametrize("input_path", CASES, ids=_case_id)
def test_golden_split(input_path: Path) -> None:
    dialect = input_path.parent.parent.name
    expected = json.loads((input_path.parent / "expected.json").read_text(encoding="utf-8"))
    text = input_path.read_bytes().decode("utf-8")
    got = [{"line": s.line, "sql": s.sql} for s in split_sql(text, dialect)]
    assert got == expected


@pytest.mark.parametrize("input_path", CASES, ids=_case_id)
def test_golden_statements_run_on_the_engine(input_path: Path,
                                             request: pytest.FixtureRequest) -> None:
    """Each statement, sent on its own, is accepted by the real engine."""
    dialect = input_path.parent.parent.name
    db: ScratchDatabase = request.getfixturevalue(FIXTURE[dialect])
    backend = backend_for(load_settings(database=db.url, environ={}, config="/dev/null"))
    backend.connect(create=True)
    try:
        for statement in split_sql(input_path.read_bytes().decode("utf-8"), dialect):
            try:
                backend.execute(statement.sql)
            except Exception as error:  # pragma: no cover - the failure message matters
                pytest.fail(f"line {statement.line}: {backend.error_message(error)}\n"
                            f"{statement.sql}")
    finally:
        backend.close()


def test_every_dialect_has_golden_cases() -> None:
    assert {path.parent.parent.name for path in CASES} == {"sqlite", "postgresql", "mysql"}
    assert len(CASES) >= 20


@pytest.mark.parametrize(
    ("dialect", "text", "line"),
    [
        ("sqlite", "SELECT 1;\nSELECT 'open", 2),
        ("postgresql", "SELECT $tag$ never closed", 1),
        ("mysql", "SELECT 1;\n\nSELECT `open", 3),
        ("postgresql", 'SELECT "open', 1),
    ],
)
def test_unterminated_quotes_are_errors_with_a_line(dialect: str, text: str, line: int) -> None:
    with pytest.raises(SplitError) as caught:
        split_sql(text, dialect)
    assert caught.value.line == line and "unterminated" in caught.value.message


def test_dialects_differ_where_the_engines_do() -> None:
    text = "SELECT 'a\\'; SELECT 2;"
    assert len(split_sql(text, "sqlite")) == 2
    assert len(split_sql(text, "postgresql")) == 2
    with pytest.raises(SplitError):
        split_sql(text, "mysql")  # in MySQL \' escapes, so the string never closes
    assert len(split_sql("SELECT 1 # c;\n;", "mysql")) == 1
    assert [s.sql for s in split_sql("/* a /* b */ c; */ SELECT 1;", "postgresql")] == [
        "SELECT 1"]
    assert [s.sql for s in split_sql("/* a /* b */ c; */ SELECT 1;", "sqlite")] == [
        "c", "*/ SELECT 1"]


def test_unknown_dialect() -> None:
    with pytest.raises(ValueError, match="unknown dialect"):
        split_sql("SELECT 1", "oracle")


def test_lines_and_offsets_after_crlf_and_bom() -> None:
    statements = split_sql("\ufeffSELECT 1;\r\n\r\nSELECT\r\n2;", "sqlite")
    assert [(s.line, s.sql) for s in statements] == [(1, "SELECT 1"), (3, "SELECT\n2")]
    assert statements[1].offset == len("SELECT 1;\n\n")


def test_a_large_insert_with_many_semicolons_in_strings_is_one_statement() -> None:
    rows = ",".join(f"({i}, 'a;b -- c /* d */ it''s; {i}')" for i in range(20000))
    text = f"INSERT INTO t VALUES {rows};\nSELECT 1;"
    statements = split_sql(text, "sqlite")
    assert len(statements) == 2 and statements[1].line == 2
