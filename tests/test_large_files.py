"""Large data migrations: checked before anything runs, then read again one at a time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import write_version
from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.config import load_settings
from sibila_sqlmig.discovery import discover
from sibila_sqlmig.errors import MigrationFilesError
from sibila_sqlmig.model import UP, Plan, PlanStep
from sibila_sqlmig.prepare import PreparedFile, load_statements, prepare
from sibila_sqlmig.sqlfile import SMALL_FILE


def _prepare_all(migrations: Path) -> list[PreparedFile]:
    found = discover(migrations, "sqlite")
    backend = backend_for(load_settings(database=":memory:", environ={}, config="/dev/null"))
    return prepare(Plan(UP, tuple(PlanStep(m, m.version) for m in found)), backend)


def _big_insert(rows: int) -> str:
    values = ",\n".join(f"({i}, 'row; {i} -- not a comment /* nor this */ it''s')"
                        for i in range(rows))
    return f"CREATE TABLE big (id INTEGER, body TEXT);\nINSERT INTO big VALUES\n{values};\n"


def test_a_large_file_runs_and_is_recorded(cli, tmp_path: Path, sqlite_db) -> None:
    migrations = tmp_path / "migrations"
    up = _big_insert(5000)
    assert len(up) > SMALL_FILE
    write_version(migrations, "001_big", up, "DROP TABLE big;\n")
    result = cli("migrate", "--database", sqlite_db.url, "--migrations", str(migrations))
    assert result.code == 0, result.err
    assert sqlite_db.rows("SELECT count(*) FROM big") == [(5000,)]


def test_a_large_file_that_is_not_utf8_stops_the_run_before_any_write(cli,
                                                                      tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_small", "CREATE TABLE small (a INT);\n")
    folder = write_version(migrations, "002_big", "SELECT 1;\n")
    (folder / "up.sql").write_bytes(_big_insert(5000).encode() + b"\nSELECT 'caf\xe9';\n")
    database = tmp_path / "db.sqlite"
    result = cli("migrate", "--database", str(database), "--migrations", str(migrations))
    assert result.code == 2
    assert "002_big/up.sql:5004: is not UTF-8 text" in result.err
    assert not database.exists()


def test_a_large_file_changed_after_its_check_is_refused(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    folder = write_version(migrations, "001_big", _big_insert(5000))
    [prepared] = _prepare_all(migrations)
    assert prepared.statements is None  # large: read again when it runs
    assert len(load_statements(prepared)) == 2
    up = folder / "up.sql"
    up.write_text(_big_insert(5001))
    with pytest.raises(MigrationFilesError, match="changed while sibila-sqlmig was running"):
        load_statements(prepared)


def test_a_file_changed_between_discovery_and_its_check_is_refused(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    folder = write_version(migrations, "001_big", _big_insert(5000))
    found = discover(migrations, "sqlite")
    (folder / "up.sql").write_text(_big_insert(4000))
    os.utime(folder / "up.sql", ns=(1, 1))
    backend = backend_for(load_settings(database=":memory:", environ={}, config="/dev/null"))
    with pytest.raises(MigrationFilesError, match="changed while"):
        prepare(Plan(UP, tuple(PlanStep(m, m.version) for m in found)), backend)


def test_a_large_file_is_hashed_once_and_its_edits_are_caught(cli, tmp_path: Path,
                                                              sqlite_db) -> None:
    import hashlib

    migrations = tmp_path / "migrations"
    folder = write_version(migrations, "001_big", _big_insert(5000))
    args = ["--database", sqlite_db.url, "--migrations", str(migrations)]
    assert cli("migrate", *args).code == 0
    expected = hashlib.sha256((folder / "up.sql").read_bytes()).hexdigest()
    assert sqlite_db.rows("SELECT checksum FROM schema_migrations") == [(expected,)]
    assert cli("verify", *args).code == 0
    (folder / "up.sql").write_text(_big_insert(5000).replace("row; 42 ", "row; 43 "))
    verify = cli("verify", *args)
    assert verify.code == 1 and "001" in verify.out


def test_a_dry_run_result_reads_nothing_after_it_was_made(tmp_path: Path) -> None:
    """RunResult.to_dict() is a value's view: the files may be gone by then."""
    import shutil

    from sibila_sqlmig import Migrator

    migrations = tmp_path / "migrations"
    write_version(migrations, "001_big", _big_insert(5000))
    result = Migrator(database=str(tmp_path / "db.sqlite"), migrations=migrations,
                      config="/dev/null").migrate(dry_run=True)
    shutil.rmtree(migrations)
    [planned] = result.to_dict()["migrations"]
    assert [statement["line"] for statement in planned["statements"]] == [1, 2]
    assert planned["statements"][1]["sql"].startswith("INSERT INTO big VALUES")


def test_a_large_comment_only_file_is_refused_whatever_the_comment_at_the_boundary(
        cli, tmp_path: Path) -> None:
    """Discovery looks at a large file's head first; a "--" cut at 64 KiB is no statement."""
    migrations = tmp_path / "migrations"
    folder = write_version(migrations, "001_comments", "SELECT 1;\n")
    body = "-- c\n" * (SMALL_FILE // 5) + "-" * 7 + " a comment across the boundary\n"
    (folder / "up.sql").write_text(body)
    assert len(body.encode()) > SMALL_FILE
    database = tmp_path / "db.sqlite"
    result = cli("migrate", "--database", str(database), "--migrations", str(migrations))
    assert result.code == 2 and "001_comments/up.sql: holds no SQL statement" in result.err
    assert not database.exists()


def test_a_large_file_changed_during_the_run_stops_it_naming_what_ran(tmp_path: Path) -> None:
    from sibila_sqlmig import Migrator
    from sibila_sqlmig.errors import FileChangedError

    migrations = tmp_path / "migrations"
    write_version(migrations, "001_small", "CREATE TABLE small (a INT);\n")
    big = write_version(migrations, "002_big", _big_insert(5000)) / "up.sql"

    def edit_the_next_file(step: object) -> None:
        big.write_text(_big_insert(5001))

    migrator = Migrator(database=str(tmp_path / "db.sqlite"), migrations=migrations,
                        config="/dev/null")
    with pytest.raises(FileChangedError) as caught:
        migrator.migrate(progress=edit_the_next_file)
    assert caught.value.exit_code == 1
    assert "002_big/up.sql: changed while sibila-sqlmig was running" in str(caught.value)
    assert "This run had already applied or rolled back: 001." in str(caught.value)
