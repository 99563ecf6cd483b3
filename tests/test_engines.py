"""Engine-specific behaviour: refusals, strict execution, URLs, schemas, MySQL's notice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import ScratchDatabase, write_version
from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.config import load_settings


def _backend(db: ScratchDatabase):
    backend = backend_for(load_settings(database=db.url, environ={}, config=os.devnull))
    backend.connect(create=True)
    return backend


def test_a_multi_statement_string_is_refused_by_every_engine(db: ScratchDatabase) -> None:
    """So a mis-split can never run two statements unnoticed."""
    backend = _backend(db)
    try:
        with pytest.raises(Exception) as caught:
            backend.execute("CREATE TABLE one (a INT); CREATE TABLE two (a INT)")
        assert backend.is_driver_error(caught.value)
        backend.execute("SELECT '50%; not a placeholder'")  # one statement with % and ;
    finally:
        backend.close()
    assert not {"one", "two"} & db.tables()


NON_TRANSACTIONAL = {
    "postgresql": [
        ("CREATE INDEX CONCURRENTLY t1_a ON t1 (a)", "'CREATE INDEX CONCURRENTLY t1_a'"),
        ("CREATE UNIQUE INDEX CONCURRENTLY t1_u ON t1 (a)", "'CREATE UNIQUE INDEX CONCURRENTLY'"),
        ("DROP INDEX CONCURRENTLY t1_a", "'DROP INDEX CONCURRENTLY t1_a'"),
        ("REINDEX TABLE CONCURRENTLY t1", "'REINDEX TABLE CONCURRENTLY t1'"),
        ("vacuum t1", "'vacuum t1'"),
        ("CREATE DATABASE other", "'CREATE DATABASE other'"),
        ("ALTER SYSTEM SET work_mem = '8MB'", "'ALTER SYSTEM SET work_mem'"),
    ],
    "sqlite": [("VACUUM", "'VACUUM'")],
}


@pytest.mark.parametrize(("fixture", "dialect"), [("postgres_db", "postgresql"),
                                                   ("sqlite_db", "sqlite")])
def test_statements_that_cannot_run_in_a_transaction_are_refused_before_anything(
        fixture: str, dialect: str, tmp_path: Path, cli,
        request: pytest.FixtureRequest) -> None:
    db: ScratchDatabase = request.getfixturevalue(fixture)
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_table", "CREATE TABLE t1 (a INT);\n")
    cases = NON_TRANSACTIONAL[dialect]
    write_version(migrations, "002_refused",
                  "".join(f"{sql};\n" for sql, _ in cases))
    result = cli("migrate", "--database", db.url, "--migrations", str(migrations))
    assert result.code == 2
    up = migrations / "002_refused" / "up.sql"
    for line, (_, shown) in enumerate(cases, 1):
        assert f"{up}:{line}: {shown}" in result.err
    assert "Set 'transaction: false'" in result.err
    assert "t1" not in db.tables()  # refused before version 001 ran


def test_vacuum_runs_with_transaction_false_on_sqlite(sqlite_db: ScratchDatabase,
                                                      tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_vacuum", "VACUUM;\n", transaction=False)
    assert cli("migrate", "--database", sqlite_db.url, "--migrations",
               str(migrations)).code == 0
    assert sqlite_db.versions() == ["001"]


def test_schema_qualified_table_and_url_parameters_on_postgres(postgres_db: ScratchDatabase,
                                                               tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    url = postgres_db.url + "?sslmode=disable&application_name=deploy_42"
    result = cli("migrate", "--database", url, "--migrations", str(migrations), "--table",
                 "app.schema_migrations")
    assert result.code == 0, result.err
    assert postgres_db.versions("app.schema_migrations") == ["001"]
    status = cli("status", "--database", url, "--migrations", str(migrations), "--table",
                 "app.schema_migrations")
    assert "table: app.schema_migrations" in status.out and "1 applied" in status.out
    bad = cli("status", "--database", postgres_db.url + "?no_such_option=1", "--migrations",
              str(migrations))
    assert bad.code == 1 and "no_such_option" in bad.err
    twice = cli("status", "--database", postgres_db.url + "?dbname=other", "--migrations",
                str(migrations))
    assert twice.code == 2 and "gives dbname as a query parameter too" in twice.err
    assert "Traceback" not in twice.err
    user = postgres_db.url.split("://", 1)[1].split("@", 1)[0]
    without_user = postgres_db.url.replace(f"{user}@", "", 1) + f"?user={user}"
    assert cli("status", "--database", without_user, "--migrations",
               str(migrations)).code == 0  # a part the URL leaves out may come as a parameter


def test_schema_qualified_table_is_refused_elsewhere(sqlite_db: ScratchDatabase,
                                                     tmp_path: Path, cli) -> None:
    result = cli("status", "--database", sqlite_db.url, "--migrations", str(tmp_path),
                 "--table", "app.versions")
    assert result.code == 2 and "only supported on PostgreSQL" in result.err


def test_mysql_run_with_ddl_says_ddl_commits_implicitly(mysql_db: ScratchDatabase,
                                                        tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_ddl", "CREATE TABLE t1 (a INT);\n")
    write_version(migrations, "002_dml", "INSERT INTO t1 VALUES (1);\n")
    result = cli("migrate", "--database", mysql_db.url, "--migrations", str(migrations))
    assert result.code == 0
    assert "MySQL/MariaDB commit DDL implicitly" in result.out
    assert "version(s) 001 can leave" in result.out


def test_mysql_delimiter_procedure_migration(mysql_db: ScratchDatabase, tmp_path: Path,
                                             cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_proc", "CREATE TABLE t (a INT);\nDELIMITER $$\n"
                  "CREATE PROCEDURE fill() BEGIN INSERT INTO t VALUES (1); "
                  "INSERT INTO t VALUES (2); END$$\nDELIMITER ;\nCALL fill();\n",
                  "DROP PROCEDURE fill;\nDROP TABLE t;\n")
    result = cli("migrate", "--database", mysql_db.url, "--migrations", str(migrations))
    assert result.code == 0, result.err
    assert sorted(mysql_db.rows("SELECT a FROM t")) == [(1,), (2,)]
    assert cli("rollback", "--database", mysql_db.url, "--migrations",
               str(migrations)).code == 0
    assert "t" not in mysql_db.tables()


def test_a_commit_that_fails_is_rolled_back(tmp_path: Path) -> None:
    """SQLite keeps a transaction open when COMMIT fails (a deferred foreign key)."""
    backend = backend_for(load_settings(database=str(tmp_path / "fk.db"), environ={},
                                        config="/dev/null"))
    backend.connect(create=True)
    try:
        backend.execute("PRAGMA foreign_keys = ON")
        backend.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        backend.execute("CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) "
                        "DEFERRABLE INITIALLY DEFERRED)")
        with pytest.raises(Exception, match="FOREIGN KEY"), backend.transaction():
            backend.execute("INSERT INTO child VALUES (42)")
        assert backend.query("SELECT count(*) FROM child") == [(0,)]
        with backend.transaction():  # nothing was left open
            backend.execute("INSERT INTO parent VALUES (1)")
    finally:
        backend.close()
