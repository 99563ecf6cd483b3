"""Many databases in one run (README: Many databases): --database repeated,
--databases-from, --jobs, --canary, --keep-going, --json; every target with its own
lock and transactions, on real databases."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import POSTGRES_URL, ROOT, _server_url, write_version


def _folder(root: Path, count: int = 3, *, slow: str | None = None) -> Path:
    """A migrations folder of ``count`` versions, each creating table tN; ``slow`` is an
    extra statement for version 002 (to interrupt a run while it runs)."""
    migrations = root / "migrations"
    for number in range(1, count + 1):
        up = f"CREATE TABLE t{number} (id INTEGER PRIMARY KEY, note TEXT);\n"
        if number == 2 and slow:
            up += slow
        write_version(migrations, f"{number:03d}_table_{number}", up,
                      f"DROP TABLE t{number};\n")
    return migrations


def _sqlite_versions(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return sorted(row[0] for row in connection.execute(
            "SELECT version FROM schema_migrations"))
    finally:
        connection.close()


def _sqlite_tables(path: Path) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        return {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()


def _break(path: Path) -> None:
    """A database where version 001 cannot apply: its table is already there."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t1 (other TEXT)")
    connection.commit()
    connection.close()


# --- SQLite: a file list, failures, canaries ---------------------------------------------


def test_forty_sqlite_files_from_a_list(cli: Any, tmp_path: Path) -> None:
    migrations = _folder(tmp_path)
    databases = [tmp_path / f"tenant_{n:02d}.db" for n in range(40)]
    listing = tmp_path / "tenants.txt"
    listing.write_text("# every tenant\n" + "".join(
        f"{path}   # tenant {n}\n" if n % 7 == 0 else f"\n{path}\n"
        for n, path in enumerate(databases)))
    result = cli("migrate", "--migrations", str(migrations), "--databases-from", str(listing),
                 "--jobs", "4", "--no-backup")
    assert result.code == 0, result.err
    assert result.out.count("applied 001, 002, 003") == 40
    assert result.out.splitlines()[-1] == "40 database(s): 40 ok"
    for path in databases:
        assert _sqlite_versions(path) == ["001", "002", "003"]

    again = cli("migrate", "--migrations", str(migrations), "--databases-from", str(listing),
                "--jobs", "4", "--json")
    assert again.code == 0
    document = json.loads(again.out)
    assert document["summary"] == {"targets": 40, "ok": 0, "up to date": 40, "failed": 0,
                                   "interrupted": 0, "skipped": 0}
    assert [target["database"] for target in document["targets"]] == \
        [f"sqlite:///{path}" for path in databases]  # the list's order, not finishing order

    status = cli("status", "--migrations", str(migrations), "--databases-from", str(listing),
                 "--database", str(tmp_path / "new.db"), "--json")
    targets = json.loads(status.out)["targets"]
    assert len(targets) == 41
    assert targets[0]["database"].endswith("new.db")  # --database first, then the list
    assert targets[0]["result"]["counts"]["pending"] == 3  # each target's full status
    assert targets[-1]["result"]["counts"]["applied"] == 3
    assert not (tmp_path / "new.db").exists()  # status never creates a database


def test_status_is_compact_per_target(cli: Any, tmp_path: Path) -> None:
    migrations = _folder(tmp_path)
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    assert cli("migrate", "--migrations", str(migrations), "--database", str(one),
               "--to", "002").code == 0
    (migrations / "001_table_1" / "up.sql").write_text("CREATE TABLE t1 (id INTEGER);\n")
    result = cli("status", "--migrations", str(migrations), "--database", str(one),
                 "--database", str(two))
    assert result.code == 0
    lines = result.out.splitlines()
    assert any(str(one) in line and "1 applied, 1 pending, 1 edited, 0 missing" in line
               for line in lines), result.out
    assert any(str(two) in line and "0 applied, 3 pending" in line for line in lines)
    verify = cli("verify", "--migrations", str(migrations), "--database", str(one),
                 "--database", str(two), "--allow-empty")
    assert verify.code == 1  # one target's up.sql was edited after it ran
    assert "edited: 001" in verify.out
    (migrations / "001_table_1" / "up.sql").write_text(
        "CREATE TABLE t1 (id INTEGER PRIMARY KEY, note TEXT);\n")  # as it was
    connection = sqlite3.connect(one)
    connection.execute("CREATE INDEX by_hand ON t1 (note)")
    connection.commit()
    connection.close()
    drift = cli("verify", "--drift", "--migrations", str(migrations), "--database", str(one),
                "--database", str(two), "--allow-empty")
    assert drift.code == 1
    assert "made by hand (no migration creates it): index by_hand on t1" in drift.out
    assert "1 ok, 1 failed" in drift.out.splitlines()[-1]
    dump = cli("migrate", "--dump", str(tmp_path / "schema.sql"), "--migrations",
               str(migrations), "--database", str(one), "--database", str(two))
    assert dump.code == 2 and "is one file" in dump.err
    config = tmp_path / "with_dump.yaml"
    config.write_text("dump: schema.sql\n")
    assert cli("migrate", "--no-dump", "--config", str(config), "--migrations",
               str(migrations), "--database", str(one), "--database", str(two)).code == 0
    assert not (tmp_path / "schema.sql").exists()
    # a project's dump: reading a fleet is fine
    read = cli("status", "--config", str(config), "--migrations", str(migrations),
               "--database", str(one), "--database", str(two))
    assert read.code == 0, read.err


def test_a_broken_target_stops_the_roll_out_unless_keep_going(cli: Any, tmp_path: Path
                                                              ) -> None:
    migrations = _folder(tmp_path)
    paths = [tmp_path / f"db{n}.db" for n in range(5)]
    _break(paths[1])
    args = ["migrate", "--migrations", str(migrations), "--no-backup",
            *[part for path in paths for part in ("--database", str(path))]]
    stopped = cli(*args)  # one job: the order is the list's
    assert stopped.code == 1
    assert _sqlite_versions(paths[0]) == ["001", "002", "003"]
    assert "table t1 already exists" in stopped.out
    for path in paths[2:]:
        assert not path.exists()  # never started: not even created
    assert stopped.out.count("not started: an earlier target failed") == 3
    assert stopped.out.splitlines()[-1] == "5 database(s): 1 ok, 1 failed, 3 skipped"

    going = cli(*args, "--keep-going", "--jobs", "2", "--json")
    assert going.code == 1
    document = json.loads(going.out)
    outcomes = [target["outcome"] for target in document["targets"]]
    assert outcomes == ["up to date", "failed", "ok", "ok", "ok"]
    failed = document["targets"][1]
    assert failed["error"]["type"] == "StatementError"
    assert failed["error"]["file"].endswith("001_table_1/up.sql")
    for path in paths[2:]:
        assert _sqlite_versions(path) == ["001", "002", "003"]
    assert "t2" not in _sqlite_tables(paths[1])  # nothing of the broken one half-applied


def test_a_failed_canary_touches_nothing_else(cli: Any, tmp_path: Path) -> None:
    migrations = _folder(tmp_path)
    paths = [tmp_path / f"db{n}.db" for n in range(6)]
    _break(paths[1])
    result = cli("migrate", "--migrations", str(migrations), "--canary", "2", "--jobs", "3",
                 "--keep-going", "--no-backup",
                 *[part for path in paths for part in ("--database", str(path))])
    assert result.code == 1
    assert _sqlite_versions(paths[0]) == ["001", "002", "003"]  # the good canary ran
    for path in paths[2:]:
        assert not path.exists()
    assert result.out.count("not started: a canary failed") == 4

    paths[1].unlink()  # fixed: the roll-out goes on past the canaries
    fine = cli("migrate", "--migrations", str(migrations), "--canary", "2", "--jobs", "3",
               "--no-backup", *[part for path in paths for part in ("--database", str(path))])
    assert fine.code == 0, fine.out + fine.err
    for path in paths:
        assert _sqlite_versions(path) == ["001", "002", "003"]


def test_the_folder_is_checked_once_before_any_target(cli: Any, tmp_path: Path) -> None:
    migrations = _folder(tmp_path)
    (migrations / "002_table_2" / "migration.yaml").write_text("description: [unclosed\n")
    paths = [tmp_path / f"db{n}.db" for n in range(3)]
    result = cli("migrate", "--migrations", str(migrations), "--jobs", "2",
                 *[part for path in paths for part in ("--database", str(path))])
    assert result.code == 2
    assert "002_table_2/migration.yaml" in result.err
    assert not any(path.exists() for path in paths)


def test_usage_errors(cli: Any, tmp_path: Path) -> None:
    migrations = _folder(tmp_path)
    one, two = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    base = ["--migrations", str(migrations)]
    history = cli("history", *base, "--database", one, "--database", two)
    assert history.code == 2
    assert "`history` works on one database" in history.err
    twice = cli("migrate", *base, "--database", one, "--database", f"sqlite:///{one}")
    assert twice.code == 2
    assert "given twice (targets 1 and 2)" in twice.err
    relative = os.path.relpath(one)
    assert cli("status", *base, "--database", relative, "--database", one).code == 2
    zero = cli("migrate", *base, "--database", one, "--database", two, "--jobs", "0")
    assert zero.code == 2 and "--jobs 0" in zero.err
    listing = tmp_path / "list.txt"
    listing.write_text(f"{one}\n\nredis://nowhere/0\n")
    bad = cli("migrate", *base, "--databases-from", str(listing))
    assert bad.code == 2
    assert f"{listing}:3" in bad.err and not Path(one).exists()
    canary = cli("status", *base, "--database", one, "--database", two, "--canary", "1")
    assert canary.code == 2
    missing = cli("status", *base, "--databases-from", str(tmp_path / "nope.txt"))
    assert missing.code == 2 and "no such file" in missing.err


def test_baseline_repair_and_rollback_over_a_fleet(cli: Any, tmp_path: Path) -> None:
    migrations = _folder(tmp_path)
    paths = [str(tmp_path / f"db{n}.db") for n in range(3)]
    targets = [part for path in paths for part in ("--database", path)]
    base = ["--migrations", str(migrations), "--no-backup"]
    assert cli("baseline", "001", "--migrations", str(migrations), *targets).code == 0
    assert cli("migrate", *base, *targets).code == 0
    rolled = cli("rollback", *base, "--steps", "2", "--jobs", "3", *targets, "--json")
    assert rolled.code == 0
    document = json.loads(rolled.out)
    assert [target["versions"] for target in document["targets"]] == [["003", "002"]] * 3
    for path in paths:
        assert _sqlite_versions(Path(path)) == ["001"]
    repaired = cli("repair", "--migrations", str(migrations), *targets, "--json")
    assert repaired.code == 0
    assert json.loads(repaired.out)["summary"]["up to date"] == 3


# --- PostgreSQL: databases, and schemas per tenant ---------------------------------------


@pytest.fixture
def three_postgres_databases(postgres_server: Any) -> Iterator[list[str]]:
    admin = postgres_server.admin()
    names = [f"sqlmig_fleet_{uuid.uuid4().hex[:10]}" for _ in range(3)]
    for name in names:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield [_server_url(POSTGRES_URL, name) for name in names]
    for name in names:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_three_postgres_databases(cli: Any, tmp_path: Path,
                                  three_postgres_databases: list[str],
                                  postgres_server: Any) -> None:
    migrations = _folder(tmp_path)
    targets = [part for url in three_postgres_databases for part in ("--database", url)]
    result = cli("migrate", "--migrations", str(migrations), "--jobs", "3", *targets)
    assert result.code == 0, result.err
    for url in three_postgres_databases:
        connection = postgres_server.connect(url.rsplit("/", 1)[1])
        try:
            rows = connection.execute("SELECT version FROM schema_migrations "
                                      "ORDER BY version").fetchall()
        finally:
            connection.close()
        assert [row[0] for row in rows] == ["001", "002", "003"]


def test_ten_schemas_in_one_postgres_database(cli: Any, tmp_path: Path,
                                              postgres_db: Any) -> None:
    migrations = _folder(tmp_path)
    urls = [f"{postgres_db.url}?options=-csearch_path%3Dtenant_{n}" for n in range(10)]
    listing = tmp_path / "tenants.txt"
    listing.write_text("\n".join(urls) + "\n")
    result = cli("migrate", "--migrations", str(migrations), "--databases-from", str(listing),
                 "--jobs", "5", "--lock-wait", "5")
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == "10 database(s): 10 ok"
    rows = postgres_db.rows("SELECT table_schema, table_name FROM information_schema.tables "
                            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")
    assert not [row for row in rows if row[0] == "public"]  # nothing goes to public
    for n in range(10):
        tables = {name for schema, name in rows if schema == f"tenant_{n}"}
        assert tables == {"schema_migrations", "schema_migrations_journal", "t1", "t2", "t3"}
        assert postgres_db.rows(f"SELECT count(*) FROM tenant_{n}.schema_migrations") == [(3,)]
    status = cli("status", "--migrations", str(migrations), "--databases-from", str(listing),
                 "--json")
    assert all(target["result"]["counts"]["applied"] == 3
               for target in json.loads(status.out)["targets"])


def test_a_tenant_schema_lock_is_its_own(postgres_db: Any, tmp_path: Path) -> None:
    """Two tenants of one database take different advisory locks (else their runs
    would queue behind each other); a URL without a search_path keeps the key that
    earlier releases took, so that old and new workers still exclude each other."""
    import hashlib

    from sibila_sqlmig.backends import backend_for
    from sibila_sqlmig.config import load_settings

    def key(suffix: str) -> int:
        settings = load_settings(database=postgres_db.url + suffix, migrations=tmp_path,
                                 config=os.devnull, environ={})
        return backend_for(settings).lock_key  # type: ignore[attr-defined,no-any-return]

    legacy = int.from_bytes(hashlib.sha256(b"sibila_sqlmig:schema_migrations").digest()[:8],
                            "big", signed=True)
    assert key("") == legacy
    assert key("?options=-csearch_path%3Dpublic") == legacy
    tenants = {key("?options=-csearch_path%3Dtenant_a"), key("?options=-csearch_path%3Dtenant_b")}
    assert len(tenants) == 2 and legacy not in tenants
    assert key("?options=-csearch_path%3DTenant_A,public") == \
        key("?options=-csearch_path%3Dtenant_a")  # the server folds unquoted names


@pytest.mark.parametrize("lock", ["advisory", "table"])
def test_tenant_schemas_with_public_on_the_path(cli: Any, tmp_path: Path, postgres_db: Any,
                                                lock: str) -> None:
    """``search_path=Tenant_X,public``: the tenant's schema is created (folded to lower
    case, as the server does) and everything goes there, never to public, also with
    the lock table."""
    migrations = _folder(tmp_path)
    urls = [f"{postgres_db.url}?options=-csearch_path%3D{name},public"
            for name in ("Tenant_X", "tenant_y")]
    result = cli("migrate", "--migrations", str(migrations), "--lock", lock, "--jobs", "2",
                 *[part for url in urls for part in ("--database", url)])
    assert result.code == 0, result.out + result.err
    rows = postgres_db.rows("SELECT table_schema, table_name FROM information_schema.tables "
                            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")
    assert not [row for row in rows if row[0] == "public"], rows
    expected = {"schema_migrations", "schema_migrations_journal", "t1", "t2", "t3"} | \
        ({"schema_migrations_lock"} if lock == "table" else set())
    for schema in ("tenant_x", "tenant_y"):
        assert {name for where, name in rows if where == schema} == expected
    status = cli("status", "--migrations", str(migrations), "--json",
                 *[part for url in urls for part in ("--database", url)])
    assert [target["result"]["table"] for target in json.loads(status.out)["targets"]] == \
        ["tenant_x.schema_migrations", "tenant_y.schema_migrations"]


# --- MariaDB ----------------------------------------------------------------------------


@pytest.fixture
def two_mysql_databases(mysql_server: Any) -> Iterator[list[str]]:
    from conftest import MYSQL_URL

    admin = mysql_server.admin()
    names = [f"sqlmig_fleet_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with admin.cursor() as cursor:
        for name in names:
            cursor.execute(f"CREATE DATABASE `{name}`")
    yield [_server_url(MYSQL_URL, name) for name in names]
    with admin.cursor() as cursor:
        for name in names:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


def test_mariadb_targets(cli: Any, tmp_path: Path, two_mysql_databases: list[str],
                         mysql_server: Any) -> None:
    migrations = _folder(tmp_path)
    targets = [part for url in two_mysql_databases for part in ("--database", url)]
    result = cli("migrate", "--migrations", str(migrations), "--jobs", "2", "--json", *targets)
    assert result.code == 0, result.err
    assert [target["versions"] for target in json.loads(result.out)["targets"]] == \
        [["001", "002", "003"]] * 2
    for url in two_mysql_databases:
        connection = mysql_server.connect(url.rsplit("/", 1)[1])
        with connection.cursor() as cursor:
            cursor.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [row[0] for row in cursor.fetchall()] == ["001", "002", "003"]
        connection.close()


# --- interrupted runs -----------------------------------------------------------------

def _slow(rows: int) -> str:
    """Work on SQLite inside version 002's transaction: 1,500,000 rows take about a
    quarter of a second here, 30,000,000 about five."""
    return ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < "
            f"{rows}) SELECT count(*) FROM c;\n")


def _start_fleet(tmp_path: Path, migrations: Path, paths: list[Path]) -> subprocess.Popen[str]:
    listing = tmp_path / "fleet.txt"
    listing.write_text("".join(f"{path}\n" for path in paths))
    config = tmp_path / "empty.yaml"
    config.write_text("backup: false\n")
    return subprocess.Popen(
        [sys.executable, "-m", "sibila_sqlmig", "migrate", "--config", str(config),
         "--migrations", str(migrations), "--databases-from", str(listing), "--jobs", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_until_some_applied(paths: list[Path], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for path in paths:
            try:
                if _sqlite_versions(path):
                    return
            except sqlite3.Error:  # not created yet, or no table yet
                pass
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("no target applied anything within 30 s")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT", "SIGTERM", "SIGINT twice",
                                 "SIGTERM twice"])
def test_an_interrupted_fleet_run_is_finished_by_a_rerun(tmp_path: Path, how: str) -> None:
    """SIGTERM (a cancelled job, a stopped container) stops a fleet as Ctrl-C does."""
    twice = how.endswith(" twice")
    sent = getattr(signal, how.split()[0])
    migrations = _folder(tmp_path, 4, slow=_slow(30_000_000 if twice else 1_500_000))
    paths = [tmp_path / f"tenant_{n}.db" for n in range(2 if twice else 6)]
    process = _start_fleet(tmp_path, migrations, paths)
    _wait_until_some_applied(paths, process)
    process.send_signal(sent)
    if twice:  # while 002's five seconds run: the second one does not wait for them
        time.sleep(0.3)
        process.send_signal(sent)
        second = time.monotonic()
    out, err = process.communicate(timeout=60)
    if twice:
        assert time.monotonic() - second < 2.5
        assert process.returncode == 130, out + err
        assert "interrupted again: stopped at once" in err
    elif how in ("SIGINT", "SIGTERM"):  # the running files finish; no new target starts
        assert process.returncode == 130, out + err
        assert "interrupted" in out
        assert "(interrupted: rerun to finish)" in out.splitlines()[-1]
    else:
        assert process.returncode == -signal.SIGKILL
    # Nothing half-recorded: each target's rows match its tables.
    for path in paths:
        if path.exists() and "schema_migrations" in _sqlite_tables(path):
            versions = _sqlite_versions(path)
            assert {f"t{int(v)}" for v in versions} <= _sqlite_tables(path)
            assert not ({f"t{n}" for n in range(1, 5)} - {f"t{int(v)}" for v in versions}) \
                & _sqlite_tables(path)
    rerun = _start_fleet(tmp_path, migrations, paths)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out + err
    for path in paths:
        assert _sqlite_versions(path) == ["001", "002", "003", "004"]
        connection = sqlite3.connect(path)
        applied = connection.execute(
            "SELECT version, count(*) FROM schema_migrations_journal "
            "WHERE outcome = 'applied' GROUP BY version").fetchall()
        connection.close()
        assert dict(applied) == {"001": 1, "002": 1, "003": 1, "004": 1}  # once each


def test_a_fleet_run_from_another_thread(tmp_path: Path, capsys: Any) -> None:
    """main() called from an application's thread: SIGTERM is left alone (Python sets
    handlers in the main thread only), and the run works."""
    from sibila_sqlmig import cli

    migrations = _folder(tmp_path)
    paths = [tmp_path / f"tenant_{n}.db" for n in range(2)]
    with ThreadPoolExecutor(1) as pool:
        code = pool.submit(cli.main, [
            "migrate", "--migrations", str(migrations), "--config", os.devnull,
            *(argument for path in paths for argument in ("--database", str(path)))]).result()
    assert code == 0, capsys.readouterr().err
    assert all(_sqlite_versions(path) == ["001", "002", "003"] for path in paths)


def test_an_unexpected_error_fails_its_target_only(tmp_path: Path) -> None:
    """A defect in one target's work is that target's failure, not the run's end."""
    from sibila_sqlmig.config import load_settings
    from sibila_sqlmig.fleet import FAILED, OK, run_fleet

    targets = [load_settings(database=str(tmp_path / f"{n}.db"), migrations=tmp_path,
                             config=os.devnull, environ={}) for n in range(3)]

    def task(settings: Any, folder: Any) -> tuple[str, tuple[str, ...], str, None]:
        if settings.database.path.endswith("1.db"):
            raise RuntimeError("boom")
        return OK, (), "fine", None

    results = run_fleet(targets, task, jobs=2, keep_going=True)
    assert [result.outcome for result in results] == [OK, FAILED, OK]
    assert "unexpected RuntimeError: boom" in str(results[1].error)
