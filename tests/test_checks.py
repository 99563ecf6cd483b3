"""Pre-run checks, as pure functions over split statements."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import check_statements
from sibila_sqlmig.backends.mysql import MySQLBackend
from sibila_sqlmig.backends.sqlite import SQLiteBackend
from sibila_sqlmig.config import parse_database_url, parse_table_name
from sibila_sqlmig.splitting import split_sql

UP = Path("m/001_x/up.sql")


def _problems(sql: str, dialect: str, transactional: bool = True) -> list[int]:
    statements = split_sql(sql, dialect)
    found = check_statements(statements, path=UP, dialect=dialect, transactional=transactional)
    return [problem.line or 0 for problem in found]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_transaction_control_is_refused_but_savepoints_are_not(dialect: str) -> None:
    sql = ("SAVEPOINT a;\nROLLBACK TO SAVEPOINT a;\nRELEASE SAVEPOINT a;\n"
           "-- a comment first\nCOMMIT;\nbegin;\nSTART TRANSACTION;\nROLLBACK;\n")
    assert _problems(sql, dialect) == [5, 6, 7, 8]
    assert _problems(sql, dialect, transactional=False) == []


def test_end_is_transaction_control_on_postgresql_only() -> None:
    assert _problems("END;\n", "postgresql") == [1]
    assert _problems("CREATE TABLE e (a INT);\n", "sqlite") == []


def test_begin_atomic_and_not_atomic_bodies_are_not_transaction_control() -> None:
    assert _problems("BEGIN NOT ATOMIC SELECT 1; END;\n", "mysql") == []


def test_problem_names_the_header_to_change() -> None:
    [problem] = check_statements(split_sql("VACUUM;", "sqlite"), path=UP, dialect="sqlite",
                                 transactional=True)
    assert "m/001_x/migration.yaml" in problem.message and problem.line == 1


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE TABLE t (a INT)", True),
        ("/* why */ ALTER TABLE t ADD b INT", True),
        ("truncate t", True),
        ("CREATE TEMPORARY TABLE t (a INT)", False),
        ("DROP TEMPORARY TABLE t", False),
        ("INSERT INTO t VALUES (1)", False),
        ("", False),
    ],
)
def test_mysql_implicit_commits(sql: str, expected: bool, tmp_path: Path) -> None:
    """The backend owns which statements commit implicitly; no connection is needed."""
    table = parse_table_name("schema_migrations")
    mysql = MySQLBackend(parse_database_url("mysql://u@h/db", base_dir=tmp_path), table, 1.0)
    sqlite = SQLiteBackend(parse_database_url("x.db", base_dir=tmp_path), table, 1.0)
    assert mysql.commits_implicitly(sql) is expected
    assert sqlite.commits_implicitly(sql) is False
