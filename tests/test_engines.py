"""Engine-specific behaviour: refusals, strict execution, URLs, schemas, MySQL's notice."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ScratchDatabase, write_version
from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.config import load_settings, parse_database_url


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
    # Said before the run, on stderr with the other notices.
    assert "MySQL/MariaDB commit DDL implicitly" in result.err
    assert "version(s) 001 can leave" in result.err
    assert result.err.index("commit DDL implicitly") >= 0 and "applied 001" in result.out


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


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def _server_that_starts_late(target: tuple[str, int], delay: float) -> Iterator[int]:
    """A TCP port that starts listening after ``delay`` s and forwards to ``target``."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    stop = threading.Event()

    def serve() -> None:
        time.sleep(delay)
        with socket.create_server(("127.0.0.1", port)) as server:
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection(target)
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)


def test_wait_retries_until_a_late_server_accepts(postgres_db: ScratchDatabase,
                                                  tmp_path: Path, cli) -> None:
    parsed = parse_database_url(postgres_db.url, base_dir=tmp_path)
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    with _server_that_starts_late((parsed.host, parsed.port or 5432), delay=1.5) as port:
        late = postgres_db.url.replace(f":{parsed.port or 5432}/", f":{port}/", 1)
        refused = cli("status", "--database", late, "--migrations", str(migrations))
        assert refused.code == 1 and f"Cannot connect to {late}" in refused.err
        waited = cli("migrate", "--wait", "20", "--database", late, "--migrations",
                     str(migrations))
    assert waited.code == 0, waited.err
    assert waited.err.count(f"waiting up to 20 s for {late} to accept connections") == 1
    assert postgres_db.versions() == ["001"]


@pytest.mark.parametrize("fixture", ["sqlite_db", "postgres_db", "mysql_db"])
def test_a_waiting_run_says_who_holds_the_lock(fixture: str, tmp_path: Path, cli,
                                              request: pytest.FixtureRequest) -> None:
    db: ScratchDatabase = request.getfixturevalue(fixture)
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    args = ["migrate", "--lock-timeout", "2.5", "--database", db.url, "--migrations",
            str(migrations)]
    if db.engine == "sqlite":
        db.admin.execute("BEGIN IMMEDIATE")  # the application holds a write transaction
        result = cli(*args)
        db.admin.execute("ROLLBACK")
    else:
        holder = backend_for(load_settings(database=db.url, environ={}, config="/dev/null"))
        holder.connect(create=True)
        with holder.migration_lock():
            result = cli(*args)
        holder.close()
    assert result.code == 1
    notices = [line for line in result.err.splitlines()
               if line.startswith("waiting for the migration lock")]
    assert len(notices) == 1 and "it is held by" in notices[0]  # after 1 s, not again by 2.5
    held_by = {"sqlite": "write transaction", "postgresql": "pid", "mysql": "connection id"}
    assert held_by[db.engine] in notices[0]
    assert cli(*args).code == 0  # and once the lock is free, the run goes through


@pytest.mark.parametrize("fixture", ["postgres_db", "mysql_db"])
def test_wait_does_not_wait_out_a_refusal_that_will_not_change(
        fixture: str, tmp_path: Path, cli, request: pytest.FixtureRequest) -> None:
    """A server that answers "no such database" is not still starting."""
    db: ScratchDatabase = request.getfixturevalue(fixture)
    missing = db.url.rsplit("/", 1)[0] + "/sqlmig_no_such_database"
    started = time.monotonic()
    result = cli("status", "--wait", "20", "--database", missing, "--migrations",
                 str(tmp_path))
    assert result.code == 1 and "Cannot connect to" in result.err
    assert time.monotonic() - started < 5
    assert "waiting up to" not in result.err
