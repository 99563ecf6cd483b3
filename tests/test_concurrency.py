"""Locks: a crowd of workers, a held lock, a killed process."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, ScratchDatabase, run_module, write_version
from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.config import load_settings

VERSIONS = 12


def _crowd_migrations(folder: Path) -> None:
    write_version(folder, "001_log", "CREATE TABLE applied_log (version INT);\n")
    for number in range(2, VERSIONS + 1):
        write_version(folder, f"{number:03d}_t{number}",
                      f"CREATE TABLE t{number} (a INT);\n"
                      f"INSERT INTO applied_log VALUES ({number});\n")


def test_eight_processes_at_once_apply_each_version_once(db: ScratchDatabase,
                                                         tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    _crowd_migrations(migrations)
    command = [sys.executable, "-m", "sibila_sqlmig", "migrate", "--database", db.url,
               "--migrations", str(migrations), "--config", os.devnull]
    workers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outcomes = [(worker.wait(timeout=120), *worker.communicate()) for worker in workers]
    assert [code for code, _, _ in outcomes] == [0] * 8, [err for _, _, err in outcomes]
    assert db.versions() == [f"{n:03d}" for n in range(1, VERSIONS + 1)]
    assert sorted(row[0] for row in db.rows("SELECT version FROM applied_log")) == list(
        range(2, VERSIONS + 1))
    assert {f"t{n}" for n in range(2, VERSIONS + 1)} <= db.tables()
    applied_lines = sum(out.count("applied 0") for _, out, _ in outcomes)
    assert applied_lines == VERSIONS  # each version reported applied by exactly one worker


@pytest.mark.parametrize("round_", range(3))
def test_eight_processes_back_up_an_existing_sqlite_file_at_once(tmp_path: Path,
                                                                 round_: int) -> None:
    """Each run copies the file before it starts, and rotates the others' copies away
    (backup_keep 3): no run fails on a copy another rotated, and the backups kept are
    whole files that hold the database before the run. Three rounds: the race is short."""
    database = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE TABLE app_data (a INT)")
        connection.commit()
    migrations = tmp_path / "migrations"
    _crowd_migrations(migrations)
    command = [sys.executable, "-m", "sibila_sqlmig", "migrate", "--database",
               f"sqlite:///{database}", "--migrations", str(migrations), "--config", os.devnull]
    workers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outcomes = [(worker.wait(timeout=120), *worker.communicate()) for worker in workers]
    assert [code for code, _, _ in outcomes] == [0] * 8, [err for _, _, err in outcomes]
    assert sum(out.count("applied 0") for _, out, _ in outcomes) == VERSIONS
    kept = sorted(tmp_path.glob("app.db.*.before-up-001-012.sqlite-backup"))
    # backup_keep newest, and perhaps the last rotating run's own, older by its name's
    # time (read before its copy); a copy identical to a kept one is not kept.
    assert 1 <= len(kept) <= 4
    assert not list(tmp_path.glob(".app.db.*"))  # no temporary copy left behind
    for backup in kept:
        with contextlib.closing(sqlite3.connect(f"{backup.as_uri()}?mode=ro", uri=True)) as copy:
            tables = {row[0] for row in copy.execute("SELECT name FROM sqlite_master")}
            applied = copy.execute("SELECT count(*) FROM applied_log").fetchall() \
                if "applied_log" in tables else [(0,)]
        assert "app_data" in tables and applied == [(0,)]  # from before any version ran
    said = {line.split()[1] for _, _, err in outcomes for line in err.splitlines()
            if line.startswith("backup: ")}
    assert {str(path) for path in kept} <= said


def _hold_lock(db: ScratchDatabase, table: str = "schema_migrations"):
    settings = load_settings(database=db.url, table=table, environ={}, config=os.devnull)
    backend = backend_for(settings)
    backend.connect(create=True)
    return backend


def test_lock_timeout_names_the_holder(db: ScratchDatabase, tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    args = ["migrate", "--database", db.url, "--migrations", str(migrations),
            "--lock-timeout", "1"]
    if db.engine == "sqlite":
        db.admin.execute("BEGIN IMMEDIATE")  # the application holds a write transaction
        started = time.monotonic()
        result = cli(*args)
        db.admin.execute("ROLLBACK")
        assert "another process's write transaction" in result.err
        assert "fuser" in result.err
    else:
        holder = _hold_lock(db)
        with holder.migration_lock():
            started = time.monotonic()
            result = cli(*args)
        holder.close()
        who = "pid" if db.engine == "postgresql" else "connection id"
        assert "it is held by" in result.err and who in result.err
        assert ("pg_terminate_backend" if db.engine == "postgresql" else "KILL") in result.err
    assert result.code == 1
    assert 0.9 <= time.monotonic() - started < 10
    assert "Traceback" not in result.err
    assert "t1" not in db.tables()
    assert cli(*args).code == 0  # the lock is free again
    assert db.versions() == ["001"]


@pytest.mark.parametrize("engine", ["postgres_db", "mysql_db"])
def test_different_tracking_tables_do_not_block_each_other(engine: str, tmp_path: Path, cli,
                                                           request: pytest.FixtureRequest) -> None:
    db = request.getfixturevalue(engine)
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    holder = _hold_lock(db, "other_app_versions")
    with holder.migration_lock():
        result = cli("migrate", "--database", db.url, "--migrations", str(migrations),
                     "--lock-timeout", "1")
    holder.close()
    assert result.code == 0, result.err


LONG_SQL = {
    "sqlite": "CREATE TABLE big (a INT);\nINSERT INTO big VALUES (0);\n"
              "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
              "LIMIT 1000000000) INSERT INTO big SELECT x FROM c;\n",
    "postgresql": "CREATE TABLE big (a INT);\nINSERT INTO big VALUES (0);\n"
                  "INSERT INTO big SELECT generate_series(1, 1000000000);\n",
}


@pytest.mark.parametrize("engine", ["sqlite_db", "postgres_db"])
def test_killed_migration_leaves_nothing_behind(engine: str, tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    db: ScratchDatabase = request.getfixturevalue(engine)
    migrations = tmp_path / "migrations"
    folder = write_version(migrations, "001_long", LONG_SQL[db.engine])
    args = ["migrate", "--database", db.url, "--migrations", str(migrations), "--config",
            os.devnull]
    process = subprocess.Popen([sys.executable, "-m", "sibila_sqlmig", *args], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2.5)  # long enough to be inside the big INSERT
    assert process.poll() is None, "the long migration ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    if db.engine == "postgresql":
        deadline = time.monotonic() + 20
        while db.rows("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                      "'%generate_series(1, 1000000000)%' AND pid <> pg_backend_pid()")[0][0]:
            assert time.monotonic() < deadline, "the server kept running the killed statement"
            time.sleep(0.2)
    assert "big" not in db.tables()
    assert "schema_migrations" not in db.tables() or db.versions() == []
    (folder / "up.sql").write_text("CREATE TABLE big (a INT);\nINSERT INTO big VALUES (0);\n")
    rerun = run_module(*args, "--lock-timeout", "5", timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert db.versions() == ["001"]
    assert db.rows("SELECT count(*) FROM big") == [(1,)]


def test_create_index_concurrently_runs_while_the_lock_is_held(postgres_db: ScratchDatabase,
                                                                tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_table", "CREATE TABLE t1 (a INT);\n"
                  "INSERT INTO t1 SELECT generate_series(1, 1000);\n")
    write_version(migrations, "002_index", "CREATE INDEX CONCURRENTLY t1_a ON t1 (a);\n",
                  transaction=False)
    result = run_module("migrate", "--database", postgres_db.url, "--migrations",
                        str(migrations), "--config", os.devnull, timeout=60)
    assert result.returncode == 0, result.stderr
    assert postgres_db.rows("SELECT indexname FROM pg_indexes WHERE tablename = 't1'") == [
        ("t1_a",)]
