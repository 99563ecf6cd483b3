"""``lock: table``: the leased lock row, on every engine and through PgBouncer in
transaction pooling mode (tests/pgbouncer.py starts one).

Why the table lock exists: behind PgBouncer in transaction mode ``--lock advisory``
is unsafe. pg_try_advisory_lock is a session lock, taken on whichever server session
PgBouncer lent for that one statement; the migration's statements may then run on
other sessions, and another client lent the holding session is granted the same lock
again (advisory locks are re-entrant per session): two runs both "hold" it.
test_advisory_lock_is_shared_behind_transaction_pooling shows that on the real
PgBouncer; tablelock.detect_transaction_pooling tells such a connection apart, so
that the PostgreSQL backend can refuse ``--lock advisory`` there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pgbouncer import PgBouncer, running_pgbouncer

from conftest import ROOT, ScratchDatabase, run_module, write_version
from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.config import load_settings
from sibila_sqlmig.journal import client
from sibila_sqlmig.tablelock import LockLostError, detect_transaction_pooling

VERSIONS = 20
WORKERS = 8
LOCK_TABLE = "schema_migrations_lock"
TARGETS = ("pgbouncer", "postgresql", "mysql", "sqlite")


@pytest.fixture(scope="module")
def bouncer(postgres_server: Any) -> Iterator[PgBouncer]:
    """One PgBouncer (transaction pooling) for the module's tests."""
    postgres_server.admin()  # skips (or fails) first when PostgreSQL itself is down
    with running_pgbouncer() as running:
        yield running


@dataclass
class Target:
    """A scratch database and the URL the runs under test use to reach it."""

    kind: str  # one of TARGETS
    db: ScratchDatabase  # its admin connection is direct, never through PgBouncer
    url: str

    @property
    def engine(self) -> str:
        return self.db.engine

    def lock_rows(self) -> list[tuple[Any, ...]]:
        return self.db.rows(f"SELECT owner, host, pid, heartbeat_at FROM {LOCK_TABLE}")


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Target:
    """A fresh database on each engine, and PostgreSQL once more through PgBouncer."""
    if request.param == "pgbouncer":
        db: ScratchDatabase = request.getfixturevalue("postgres_db")
        bouncer: PgBouncer = request.getfixturevalue("bouncer")
        return Target("pgbouncer", db, bouncer.url(db.url.rsplit("/", 1)[1]))
    fixture = "postgres_db" if request.param == "postgresql" else f"{request.param}_db"
    db = request.getfixturevalue(fixture)
    return Target(request.param, db, db.url)


def _execute(db: ScratchDatabase, sql: str) -> None:
    """Run a statement that returns no rows on the scratch database (directly)."""
    cursor = db.admin.cursor()
    cursor.execute(sql)
    cursor.close()


def _config(folder: Path, lease: float) -> Path:
    path = folder / "sibila_sqlmig.yaml"
    path.write_text(f"lock_lease: {lease}\n")
    return path


def _args(target: Target, migrations: Path, config: Path, *extra: str) -> list[str]:
    return ["migrate", "--lock", "table", "--database", target.url, "--migrations",
            str(migrations), "--config", str(config), *extra]


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "sibila_sqlmig", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_eight_processes_apply_each_version_once(target: Target, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    for number in range(1, VERSIONS + 1):
        counter = "CREATE TABLE counter (version INT);\n" if number == 1 else ""
        write_version(migrations, f"{number:03d}_t{number}",
                      f"{counter}CREATE TABLE t{number} (a INT);\n"
                      f"INSERT INTO counter VALUES ({number});\n")
    args = _args(target, migrations, _config(tmp_path, 3))
    workers = [_start(args) for _ in range(WORKERS)]
    outcomes = [(worker.wait(timeout=180), *worker.communicate()) for worker in workers]
    assert [code for code, _, _ in outcomes] == [0] * WORKERS, [e for _, _, e in outcomes]
    assert target.db.versions() == [f"{n:03d}" for n in range(1, VERSIONS + 1)]
    assert sorted(row[0] for row in target.db.rows("SELECT version FROM counter")) == list(
        range(1, VERSIONS + 1))  # each version's INSERT ran once
    assert {f"t{n}" for n in range(1, VERSIONS + 1)} <= target.db.tables()
    assert sum(out.count("applied 0") for _, out, _ in outcomes) == VERSIONS
    assert target.lock_rows() == []  # every run deleted its row


SLEEP = {  # a statement that keeps the holder busy for 30 s (SQLite has no sleep())
    "postgresql": "SELECT pg_sleep(30);\n",
    "mysql": "SELECT SLEEP(30);\n",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
              "LIMIT 3000000000) SELECT count(*) FROM c;\n",
}


def _wait_for_row(target: Target, process: subprocess.Popen[str]) -> tuple[Any, ...]:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.communicate()
        try:
            rows = target.lock_rows()
        except Exception:  # the lock table is not there yet
            rows = []
        if rows:
            return rows[0]
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.05)


def test_a_killed_holders_lease_expires(target: Target, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    folder = write_version(migrations, "001_slow",
                           SLEEP[target.engine] + "CREATE TABLE t1 (a INT);\n")
    args = _args(target, migrations, _config(tmp_path, 2))
    holder = _start(args)
    row = _wait_for_row(target, holder)
    time.sleep(0.5)  # inside the sleeping statement
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate()
    assert target.lock_rows()[0][:3] == row[:3]  # a dead run cannot delete its row
    if target.engine == "postgresql":
        # The killed client's server session may still be running pg_sleep inside the
        # file's transaction (PostgreSQL 14+ notices the lost client within a second,
        # client_connection_check_interval; older servers only when the sleep ends).
        # It holds no lock that the next run needs, but it is ended here so that the
        # scratch database is left with nothing running.
        target.db.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                       "query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")
    # (MariaDB's session of the killed client sleeps on, holding no lock: SELECT SLEEP
    # reads no table, and nothing of the file was committed.)
    (folder / "up.sql").write_text("CREATE TABLE t1 (a INT);\n")
    started = time.monotonic()
    rerun = run_module(*args, "--lock-wait", "30", timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert "took over the migration lock" in rerun.stderr
    assert f"pid {row[2]}" in rerun.stderr  # whose lease ran out
    assert time.monotonic() - started < 15
    assert target.db.versions() == ["001"]
    assert target.lock_rows() == []


def _holding(target: Target, config: Path) -> Any:
    settings = load_settings(database=target.url, lock="table", config=config, environ={})
    backend = backend_for(settings)
    backend.connect(create=True)
    return backend


def test_a_live_holder_keeps_its_row_by_heartbeat(target: Target, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    config = _config(tmp_path, 1)
    backend = _holding(target, config)
    try:
        with backend.migration_lock():
            (owner, host, pid, first), = target.lock_rows()
            time.sleep(3.5)  # three and a half leases: only renewals keep the row ours
            started = time.monotonic()
            waiter = run_module(*_args(target, migrations, config, "--lock-wait", "1"))
            waited = time.monotonic() - started
            (owner_after, _, _, last), = target.lock_rows()
    finally:
        backend.close()
    assert owner_after == owner and last > first  # renewed, never taken over
    assert (host, pid) == (client()[0], os.getpid())
    assert waiter.returncode == 1, waiter.stderr
    assert "Timed out after 1 s waiting for the migration lock" in waiter.stderr
    assert f"held by host {host}, pid {pid}" in waiter.stderr
    assert "last heartbeat" in waiter.stderr and "lease expires 1 s after" in waiter.stderr
    quote = "`" if target.engine == "mysql" else '"'
    assert f"DELETE FROM {quote}{LOCK_TABLE}{quote} WHERE name = 'migrate' AND owner = " \
        f"'{owner}';" in waiter.stderr
    assert waited < 10
    assert "t1" not in target.db.tables()
    assert target.lock_rows() == []  # released at the end of the block


def test_a_lost_row_fails_the_run_at_release(target: Target, tmp_path: Path) -> None:
    backend = _holding(target, _config(tmp_path, 1))
    heard: list[str] = []
    backend.notify = heard.append
    try:
        with pytest.raises(LockLostError, match="lost during this run: its row was deleted"), \
                backend.migration_lock():
            _execute(target.db, f"DELETE FROM {LOCK_TABLE}")  # as the timeout's advice says
            time.sleep(1)  # the heartbeat (every lease/3 s) finds it gone
            assert any("lost the migration lock" in line for line in heard), heard
    finally:
        backend.close()


RACE = """
import os, sys, time
from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.config import load_settings
from sibila_sqlmig.tablelock import ensure_lock_table
backend = backend_for(load_settings(database=sys.argv[1], config=os.devnull, environ={}))
backend.connect(create=True)
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
ensure_lock_table(backend)
"""


def test_runs_creating_the_lock_table_at_once_do_not_collide(db: ScratchDatabase) -> None:
    # A bare CREATE TABLE IF NOT EXISTS fails on PostgreSQL in about one of three such
    # rounds (duplicate key in pg_type_typname_nsp_index): the processes start together.
    for _ in range(3):
        start = time.time() + 1.5  # after every process has imported and connected
        racers = [subprocess.Popen([sys.executable, "-c", RACE, db.url, str(start)], cwd=ROOT,
                                   stderr=subprocess.PIPE, text=True) for _ in range(WORKERS)]
        errors = [(racer.wait(timeout=60), racer.communicate()[1]) for racer in racers]
        assert [code for code, _ in errors] == [0] * WORKERS, errors
        assert LOCK_TABLE in db.tables()
        _execute(db, f"DROP TABLE {LOCK_TABLE}")


def test_detect_transaction_pooling(postgres_db: ScratchDatabase, bouncer: PgBouncer) -> None:
    import psycopg

    name = postgres_db.url.rsplit("/", 1)[1]
    with psycopg.connect(bouncer.url(name), autocommit=True) as pooled:
        assert detect_transaction_pooling(pooled)
    with psycopg.connect(postgres_db.url, autocommit=True) as direct:
        assert not detect_transaction_pooling(direct)


def test_advisory_lock_is_shared_behind_transaction_pooling(postgres_db: ScratchDatabase,
                                                            bouncer: PgBouncer) -> None:
    """Why --lock advisory must not be used behind PgBouncer in transaction mode."""
    import psycopg

    url = bouncer.url(postgres_db.url.rsplit("/", 1)[1])
    with psycopg.connect(url, autocommit=True) as first, \
            psycopg.connect(url, autocommit=True) as second:
        assert first.execute("SELECT pg_try_advisory_lock(7)").fetchone() == (True,)
        # PgBouncer lends the second client the session that has just taken the lock,
        # and an advisory lock is re-entrant for its session: both clients "hold" it.
        assert second.execute("SELECT pg_try_advisory_lock(7)").fetchone() == (True,)


def test_the_advisory_lock_is_refused_behind_transaction_pooling(
        postgres_db: ScratchDatabase, bouncer: PgBouncer, tmp_path: Path) -> None:
    from conftest import run_module

    url = bouncer.url(postgres_db.url.rsplit("/", 1)[1])
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n")
    refused = run_module("migrate", "--database", url, "--migrations", str(migrations),
                         "--config", "/dev/null", cwd=tmp_path)
    assert refused.returncode == 2 and "Use --lock table" in refused.stderr
    assert "Traceback" not in refused.stderr
    applied = run_module("migrate", "--lock", "table", "--database", url, "--migrations",
                         str(migrations), "--config", "/dev/null", cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr


def test_a_run_through_a_busy_pool(postgres_db: ScratchDatabase, bouncer: PgBouncer,
                                   tmp_path: Path) -> None:
    """Other clients keep PgBouncer's few server sessions busy, so that each of the run's
    statements may land on a different one (an idle pool hands the same one back).

    With psycopg's automatic prepared statements (prepare_threshold=5: a statement run
    five times on a connection is prepared on the server session of that moment) this
    fails with 'prepared statement "_pg3_0" does not exist': PgBouncer before 1.21 does
    not carry prepared statements across server sessions. The backend turns them off.
    """
    import threading

    import psycopg

    url = bouncer.url(postgres_db.url.rsplit("/", 1)[1])
    migrations = tmp_path / "migrations"
    for number in range(1, VERSIONS + 1):
        write_version(migrations, f"{number:03d}_t{number}", f"CREATE TABLE t{number} (a INT);\n")
    done, busy, failures = threading.Event(), threading.Barrier(4), []

    def other_client() -> None:
        try:
            with psycopg.connect(url, autocommit=True, prepare_threshold=None) as connection:
                busy.wait(timeout=10)
                while not done.is_set():
                    with connection.transaction():
                        connection.execute("SELECT 1")
                        time.sleep(0.001)
        except Exception as error:
            failures.append(error)
            busy.abort()

    others = [threading.Thread(target=other_client) for _ in range(3)]
    for thread in others:
        thread.start()
    try:
        busy.wait(timeout=10)  # every other client is connected and busy
        result = run_module("migrate", "--lock", "table", "--database", url, "--migrations",
                            str(migrations), "--config", str(_config(tmp_path, 1)))
    finally:
        done.set()
        for thread in others:
            thread.join()
    assert failures == []
    assert result.returncode == 0, result.stderr
    assert postgres_db.versions() == [f"{n:03d}" for n in range(1, VERSIONS + 1)]
