"""Sibila's databases and calls: adopted and kept working as they are."""

from __future__ import annotations

import hashlib
import logging
import shutil
import sqlite3
from pathlib import Path

import pytest

import sibila_sqlmig
from conftest import ROOT, write_version
from sibila_sqlmig import MigrationManager, Migrator, migration_status, run_migrations, tables

SIBILA_MIGRATIONS = ROOT / "migrations"
SIBILA_INDEXES = {"idx_documents_path", "idx_paragraphs_path", "idx_paragraphs_page"}


@pytest.fixture
def sibila(tmp_path: Path) -> tuple[str, Path]:
    """A database URL and a copy of the repo's migrations folder."""
    migrations = tmp_path / "migrations"
    shutil.copytree(SIBILA_MIGRATIONS, migrations)
    return f"sqlite:///{tmp_path / 'data' / 'sqlite.db'}", migrations


def _sqlite(url: str) -> sqlite3.Connection:
    return sqlite3.connect(url.removeprefix("sqlite:///"))


def _names(connection: sqlite3.Connection, kind: str) -> set[str]:
    rows = connection.execute("SELECT name FROM sqlite_master WHERE type = ?", [kind])
    return {row[0] for row in rows if not row[0].startswith("sqlite_")}


def test_legacy_tables_routine_creates_sibilas_two_tables(sibila: tuple[str, Path]) -> None:
    url, _ = sibila
    tables(database=url)
    tables(database=url)  # idempotent, like the start-up call it replaces
    with _sqlite(url) as connection:
        assert _names(connection, "table") == {"documents_info", "paragraphs_metadatas"}
        assert _names(connection, "index") == set()
        columns = [row[1] for row in connection.execute("PRAGMA table_info(paragraphs_metadatas)")]
    assert columns == ["uuid", "path", "page", "name", "source", "letters", "content",
                       "distance", "mimetype", "size", "phrases", "lines", "chunks"]


def test_database_made_by_the_legacy_routine_is_adopted_with_its_rows(
        sibila: tuple[str, Path]) -> None:
    url, migrations = sibila
    tables(database=url)
    with _sqlite(url) as connection:
        connection.execute("INSERT INTO documents_info (path, name, size, pages, mimetype) "
                           "VALUES ('/d/a.pdf', 'a.pdf', 10, 2, 'application/pdf')")
        connection.execute("INSERT INTO paragraphs_metadatas (uuid, path, page, content) "
                           "VALUES ('u1', '/d/a.pdf', 1, 'hello')")
    assert run_migrations(database=url, migrations_dir=migrations) is True
    with _sqlite(url) as connection:
        assert connection.execute("SELECT name FROM documents_info").fetchall() == [("a.pdf",)]
        assert connection.execute("SELECT content FROM paragraphs_metadatas").fetchall() == [
            ("hello",)]
        assert SIBILA_INDEXES <= _names(connection, "index")
    status = migration_status(database=url, migrations_dir=migrations)
    assert status["applied"] == ["001"] and status["total_pending"] == 0


def test_legacy_null_checksum_row_counts_as_applied_and_repair_fills_it(
        sibila: tuple[str, Path], cli) -> None:
    url, migrations = sibila
    tables(database=url)
    with _sqlite(url) as connection:
        connection.execute("CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, "
                           "description TEXT, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
                           "checksum TEXT)")
        connection.execute("INSERT INTO schema_migrations (version, description) "
                           "VALUES ('001', 'Initial schema')")
    args = ["--database", url, "--migrations", str(migrations)]
    verify = cli("verify", *args)
    assert verify.code == 0
    assert "unverified" in verify.out and "001" in verify.out
    assert migration_status(database=url, migrations_dir=migrations)["unverified"] == ["001"]
    migrate = cli("migrate", *args)
    assert migrate.code == 0 and "Nothing to apply" in migrate.out
    assert cli("repair", *args).code == 0
    expected = hashlib.sha256((migrations / "001_initial" / "up.sql").read_bytes()).hexdigest()
    with _sqlite(url) as connection:
        assert connection.execute("SELECT checksum FROM schema_migrations").fetchall() == [
            (expected,)]
    assert "unverified" not in cli("verify", *args).out


def test_migration_manager_api(sibila: tuple[str, Path]) -> None:
    url, migrations = sibila
    write_version(migrations, "002_add_tags", "CREATE TABLE tags (name TEXT);\n",
                  "DROP TABLE tags;\n")
    write_version(migrations, "003_add_notes", "CREATE TABLE notes (body TEXT);\n",
                  "DROP TABLE notes;\n")
    manager = MigrationManager(database=url, migrations_dir=migrations)
    assert manager.get_pending_migrations() == ["001", "002", "003"]
    assert manager.run_migrations() is True
    assert manager.get_applied_migrations() == ["001", "002", "003"]
    # Sibila's rollback idiom: newest three, newest first.
    for version in reversed(manager.get_applied_migrations()[-3:]):
        assert manager.rollback_migration(version) is True
    assert manager.get_applied_migrations() == []
    assert manager.apply_migration("001") is True  # that version alone (Sibila's meaning)
    assert manager.get_applied_migrations() == ["001"]
    assert manager.apply_migration("002") is True
    assert manager.get_applied_migrations() == ["001", "002"]
    assert manager.apply_migration("002") is False  # already applied: logged, not raised
    assert manager.rollback_migration("001") is False  # not the newest
    assert manager.get_migration_status()["current_version"] == "002"
    assert manager.verify() is True


def test_run_migrations_returns_false_and_logs_on_failure(
        sibila: tuple[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    url, migrations = sibila
    write_version(migrations, "002_broken", "CREATE TABLE x (a INT);\nSELEC 1;\n")
    with caplog.at_level(logging.ERROR, logger="sibila_sqlmig"):
        assert run_migrations(database=url, migrations_dir=migrations) is False
    assert "002_broken/up.sql:2" in caplog.text


def test_typed_api_returns_results_and_never_prints(
        sibila: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    url, migrations = sibila
    migrator = Migrator(database=url, migrations=migrations)
    result = migrator.migrate()
    assert [step.version for step in result.steps] == ["001"]
    assert result.steps[0].statements == 5 and result.steps[0].seconds >= 0
    assert migrator.status().report.having(sibila_sqlmig.State.APPLIED)
    with pytest.raises(sibila_sqlmig.RollbackRefused):
        Migrator(database=f"sqlite:///{Path(url[10:]).parent / 'other.db'}",
                 migrations=migrations).rollback()
    assert capsys.readouterr() == ("", "")


def test_repo_config_points_at_sibilas_database(tmp_path: Path) -> None:
    settings = sibila_sqlmig.load_settings(config=ROOT / "sibila_sqlmig.yaml", environ={},
                                           cwd=tmp_path)
    assert settings.database.path == str(ROOT / "data" / ".sqlite" / "sqlite.db")
    assert settings.migrations_dir == ROOT / "migrations"


def test_read_only_commands_never_create_the_database(sibila: tuple[str, Path], cli) -> None:
    url, migrations = sibila
    path = Path(url.removeprefix("sqlite:///"))
    args = ["--database", url, "--migrations", str(migrations)]
    for command in (["status"], ["verify", "--allow-empty"], ["migrate", "--dry-run"],
                    ["status", "--json"]):
        assert cli(*command, *args).code == 0
    empty = cli("verify", *args)
    assert empty.code == 1 and "no applied version is recorded" in empty.out
    nothing = cli("rollback", "--dry-run", *args)
    assert nothing.code == 1 and "Nothing to roll back" in nothing.err
    assert not path.exists()


def test_baseline_and_repair_edge_cases(sibila: tuple[str, Path], cli) -> None:
    url, migrations = sibila
    args = ["--database", url, "--migrations", str(migrations)]
    unknown = cli("baseline", "42", *args)
    assert unknown.code == 2 and "baseline 42: no such version" in unknown.err
    assert cli("baseline", "1", *args).code == 0
    again = cli("baseline", "1", *args)
    assert again.code == 0 and "Nothing to record" in again.out
    repaired = cli("repair", *args)
    assert repaired.code == 0 and "Nothing to repair" in repaired.out


def test_a_no_op_migrate_imports_neither_the_runner_nor_yaml(sibila: tuple[str, Path]) -> None:
    import subprocess
    import sys

    url, migrations = sibila
    assert run_migrations(database=url, migrations_dir=migrations) is True
    script = ("import sys\nfrom sibila_sqlmig.cli import main\n"
              f"code = main(['migrate', '--database', {url!r}, '--migrations', "
              f"{str(migrations)!r}, '--config', '/dev/null', '-q'])\n"
              "loaded = {'sibila_sqlmig.runner', 'sibila_sqlmig.prepare', 'sqlparse', 'logging', "
              "'yaml'} & set(sys.modules)\n"
              "print(sorted(loaded)); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


STARTUP = """
import os, sys
sys.path.insert(0, "src/database")
import migrate  # Sibila's module, now one line that re-exports from sibila_sqlmig

assert migrate.check_database_health()
assert migrate.auto_migrate_on_startup()
status = migrate.migration_status()
assert status["applied_migrations"] == ["001"], status
assert status["pending_migrations"] == [] and status["total_pending"] == 0
assert status["schema_integrity"] is True and status["database_ready"] is True

manager = migrate.MigrationManager()
assert manager.migrations_path == "src/migrations", manager.migrations_path
assert manager.migration_table == "schema_migrations"
assert manager.ensure_migration_table() is True
assert manager.check_schema_integrity() is True
for name in ("002_tags", "003_notes"):
    os.mkdir(f"src/migrations/{name}")
    for file, text in (("migration.yaml", f"description: {name}\\n"),
                       ("up.sql", f"CREATE TABLE {name[4:]} (a TEXT);\\n"),
                       ("down.sql", f"DROP TABLE {name[4:]};\\n")):
        with open(f"src/migrations/{name}/{file}", "w") as handle:
            handle.write(text)
assert manager.status()["pending_migrations"] == ["002", "003"]
assert manager.apply_migration("002") is True  # that version alone
assert manager.status()["pending_migrations"] == ["003"]
assert manager.migrate() is True
assert manager.status()["applied_migrations"] == ["001", "002", "003"]
assert manager.rollback_migration("003") is True
assert manager.status()["total_applied"] == 2
print("sibila ok")
"""


def test_sibilas_start_up_and_tests_run_unchanged_through_a_one_line_module(
        tmp_path: Path) -> None:
    """Sibila's main.py and its migration tests, against a module that re-exports."""
    import shutil
    import subprocess
    import sys

    (tmp_path / "sibila_sqlmig.yaml").write_text(
        "database: sqlite:///data/.sqlite/sqlite.db\nmigrations: src/migrations\n")
    shutil.copytree(ROOT / "migrations" / "001_initial",
                    tmp_path / "src" / "migrations" / "001_initial")
    (tmp_path / "src" / "database").mkdir()
    (tmp_path / "src" / "database" / "migrate.py").write_text(
        "from sibila_sqlmig import (MigrationManager, auto_migrate_on_startup,  # noqa: F401\n"
        "    check_database_health, migration_status, run_migrations, tables)\n")
    result = subprocess.run([sys.executable, "-c", STARTUP], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sibila ok"


def test_one_set_of_keyword_names_with_explicit_signatures(sibila: tuple[str, Path]) -> None:
    import inspect

    url, migrations = sibila
    assert run_migrations(database=url, migrations=migrations) is True  # Migrator's name
    assert migration_status(url, migrations)["total_applied"] == 1  # positional, as before
    with pytest.raises(TypeError, match="not both"):
        MigrationManager(database=url, migrations=migrations, migrations_dir=migrations)
    with pytest.raises(TypeError, match="run_migrations"):
        run_migrations(database=url, migration_dir=migrations)  # type: ignore[call-arg]
    for call in (Migrator, run_migrations, migration_status, MigrationManager):
        names = set(inspect.signature(call).parameters)
        assert {"database", "migrations", "config", "table", "lock_timeout"} <= names, call
        assert not any(parameter.kind is inspect.Parameter.VAR_KEYWORD
                       for parameter in inspect.signature(call).parameters.values())
