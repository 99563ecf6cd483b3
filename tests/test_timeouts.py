"""Per-file lock_timeout, statement_timeout and retries, on real servers; keepalives."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ScratchDatabase, write_version
from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.config import load_settings


def _journal(db: ScratchDatabase) -> list[tuple[Any, ...]]:
    return db.rows("SELECT version, outcome, attempt FROM schema_migrations_journal "
                   "ORDER BY id")


def _table_t(db: ScratchDatabase, cli, tmp_path: Path) -> tuple[str, ...]:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n")
    args = ("--database", db.url, "--migrations", str(migrations))
    assert cli("migrate", *args).code == 0
    return args


def test_a_lock_held_by_another_session_times_out_retries_and_names_the_holder(
        postgres_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    args = _table_t(postgres_db, cli, tmp_path)
    write_version(tmp_path / "migrations", "002_alter", "ALTER TABLE t ADD COLUMN b INT;\n",
                  lock_timeout=0.3, retries=2)
    holder = postgres_db.admin
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
    started = time.monotonic()
    try:
        result = cli("migrate", *args)
    finally:
        holder.execute("ROLLBACK")
    took = time.monotonic() - started
    assert result.code == 1 and "canceling statement due to lock timeout" in result.err
    assert result.err.count("running the file again in") == 2  # each attempt is reported
    assert "Attempt 3 of 3" in result.err
    assert f"pid {pid}" in result.err and "AccessExclusiveLock on t" in result.err
    assert f"SELECT pg_terminate_backend({pid});" in result.err
    assert took < 8  # 3 x 0.3 s of waiting, and backoffs of about 0.5 and 1 s
    assert _journal(postgres_db)[1:] == [("002", "failed", 1), ("002", "failed", 2),
                                         ("002", "failed", 3)]
    assert postgres_db.versions() == ["001"]


def test_a_lock_released_during_the_backoff_lets_a_retry_succeed(
        postgres_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    args = _table_t(postgres_db, cli, tmp_path)
    write_version(tmp_path / "migrations", "002_alter", "ALTER TABLE t ADD COLUMN b INT;\n",
                  lock_timeout=0.3, retries=3)
    holder = postgres_db.admin
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    release = threading.Timer(0.6, lambda: holder.execute("ROLLBACK"))
    release.start()
    try:
        result = cli("migrate", *args)
    finally:
        release.join()
    assert result.code == 0, result.err
    assert "(attempt 1 of 4); running the file again" in result.err
    assert postgres_db.versions() == ["001", "002"]
    outcomes = _journal(postgres_db)[1:]
    assert outcomes[0] == ("002", "failed", 1) and outcomes[-1][1] == "applied"
    assert outcomes[-1][2] == len(outcomes)


def test_an_inherited_statement_timeout_does_not_kill_a_file_that_sets_its_own(
        postgres_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_slow", "SELECT pg_sleep(0.8);\nCREATE TABLE t (a INT);\n",
                  statement_timeout=0)
    # As a role or a managed database would set it, here through the URL.
    url = postgres_db.url + "?options=-c%20statement_timeout%3D300"
    assert cli("migrate", "--database", url, "--migrations", str(migrations)).code == 0
    write_version(migrations, "002_slow", "SELECT pg_sleep(0.8);\n")
    killed = cli("migrate", "--database", url, "--migrations", str(migrations))
    assert killed.code == 1 and "statement timeout" in killed.err
    # A project-wide default does the same for every file.
    config = tmp_path / "sibila_sqlmig.yaml"
    config.write_text("statement_timeout: 0\n")
    assert cli("migrate", "--database", url, "--migrations", str(migrations),
               "--config", str(config)).code == 0
    # Inside the file's transaction only: the session keeps its own value afterwards.
    assert postgres_db.versions() == ["001", "002"]


def test_a_file_without_transaction_sets_its_timeouts_for_the_session_and_resets_them(
        postgres_db: ScratchDatabase, tmp_path: Path) -> None:
    from sibila_sqlmig.model import Header

    backend = backend_for(load_settings(database=postgres_db.url + "?options=-c%20"
                                        "statement_timeout%3D4000", config="/dev/null",
                                        environ={}))
    backend.connect(create=False)
    try:
        with backend.file_session(Header("x", transaction=False, statement_timeout=0,
                                         lock_timeout=2)):
            assert backend.query("SHOW statement_timeout") == [("0",)]
            assert backend.query("SHOW lock_timeout") == [("2s",)]
        assert backend.query("SHOW statement_timeout") == [("4s",)]  # the URL's, again
        assert backend.query("SHOW lock_timeout") == [("0",)]
    finally:
        backend.close()


def test_a_metadata_lock_times_out_on_mariadb_and_names_the_holder(
        mysql_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    args = _table_t(mysql_db, cli, tmp_path)
    write_version(tmp_path / "migrations", "002_alter", "ALTER TABLE t ADD COLUMN b INT;\n",
                  lock_timeout=1, retries=1)
    holder = mysql_db.admin
    holder.autocommit(False)
    cursor = holder.cursor()
    cursor.execute("SELECT * FROM t")  # holds a shared metadata lock until it ends
    thread = holder.thread_id()
    try:
        result = cli("migrate", *args)
    finally:
        holder.rollback()
        holder.autocommit(True)
    assert result.code == 1 and "Lock wait timeout exceeded" in result.err
    assert "(attempt 1 of 2); running the file again" in result.err
    assert f"connection {thread}" in result.err and f"KILL {thread};" in result.err
    assert mysql_db.versions() == ["001"]
    write_version(tmp_path / "migrations", "003_slow", "SELECT SLEEP(2);\n",
                  statement_timeout=0.5)
    slow = cli("migrate", *args, "--to", "3")
    assert slow.code == 1 and "max_statement_time" in slow.err


def test_sqlite_statement_timeout_interrupts_a_long_statement(
        sqlite_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_slow", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                  "SELECT x + 1 FROM c WHERE x < 100000000) SELECT count(*) FROM c;\n",
                  statement_timeout=0.2)
    started = time.monotonic()
    result = cli("migrate", "--database", sqlite_db.url, "--migrations", str(migrations))
    assert result.code == 1 and "ran longer than its statement_timeout (0.2 s)" in result.err
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("text", "message"), [
    ("lock_timeout: -1", "'lock_timeout' must be from 0 to 2147483 seconds"),
    ("lock_timeout: .inf", "'lock_timeout' must be from 0 to 2147483 seconds"),
    ("statement_timeout: soon", "'statement_timeout' must be a number of seconds"),
    ("retries: 1000", "'retries' must be from 0 to 100"),
    ("retries: true", "'retries' must be a whole number"),
])
def test_bad_timeout_keys_are_header_problems(tmp_path: Path, cli, text: str,
                                              message: str) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n",
                  header=f"description: t\n{text}\n")
    result = cli("migrate", "--database", str(tmp_path / "x.db"), "--migrations",
                 str(migrations))
    assert result.code == 2 and message in result.err


def test_keepalives_reach_both_ends_of_the_postgresql_lock_session(
        postgres_db: ScratchDatabase) -> None:
    backend = backend_for(load_settings(database=postgres_db.url, config="/dev/null",
                                        environ={}))
    backend.connect(create=False)
    try:
        holder = backend._connect()  # the advisory lock's own connection is made the same way
        try:
            parameters = holder.info.get_parameters()
            assert (parameters["keepalives_idle"], parameters["tcp_user_timeout"]) == (
                "30", "60000")
            server = holder.execute("SELECT current_setting('tcp_keepalives_idle'), "
                                    "current_setting('tcp_keepalives_count')").fetchone()
            assert server == ("30", "3")  # the server probes a vanished client as well
        finally:
            holder.close()
        assert backend._connection.prepare_threshold is None  # poolers: no prepared statements
    finally:
        backend.close()
    overridden = backend_for(load_settings(database=postgres_db.url + "?keepalives_idle=5",
                                           config="/dev/null", environ={}))
    overridden.connect(create=False)
    try:
        assert overridden._connection.info.get_parameters()["keepalives_idle"] == "5"
    finally:
        overridden.close()


def test_keepalives_are_set_on_the_mysql_socket(mysql_db: ScratchDatabase) -> None:
    backend = backend_for(load_settings(database=mysql_db.url, config="/dev/null",
                                        environ={}))
    backend.connect(create=False)
    try:
        sock = backend._connection._sock
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
    finally:
        backend.close()


def test_a_non_superuser_role_still_gets_the_lock_timeout_error(
        postgres_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    """pg_stat_activity hides other roles' session details from a plain role."""
    import uuid

    role = f"sqlmig_plain_{uuid.uuid4().hex[:8]}"
    admin = postgres_db.admin
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    admin.execute(f'GRANT ALL ON SCHEMA public TO "{role}"')
    try:
        url = postgres_db.url.replace("postgres@", f"{role}@")
        migrations = tmp_path / "migrations"
        write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n")
        assert cli("migrate", "--database", url, "--migrations", str(migrations)).code == 0
        write_version(migrations, "002_alter", "ALTER TABLE t ADD COLUMN b INT;\n",
                      lock_timeout=0.3, retries=1)
        admin.execute("BEGIN")
        admin.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        try:
            result = cli("migrate", "--database", url, "--migrations", str(migrations))
        finally:
            admin.execute("ROLLBACK")
        assert result.code == 1 and "lock timeout" in result.err
        assert "Traceback" not in result.err
    finally:
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE "{role}"')


def test_a_failed_concurrent_index_is_never_run_again(postgres_db: ScratchDatabase,
                                                      tmp_path: Path, cli) -> None:
    args = _table_t(postgres_db, cli, tmp_path)
    write_version(tmp_path / "migrations", "002_index",
                  "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\n",
                  transaction=False, lock_timeout=0.3, retries=2)
    holder = postgres_db.admin
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE t IN SHARE ROW EXCLUSIVE MODE")
    try:
        result = cli("migrate", *args)
    finally:
        holder.execute("ROLLBACK")
    assert result.code == 1 and "running the file again" not in result.err
    assert "Not run again: part of it may have stayed" in result.err
    assert postgres_db.versions() == ["001"]
