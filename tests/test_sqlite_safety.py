"""SQLite safety: table rebuilds with foreign keys, backups with restore, and on_connect."""

from __future__ import annotations

import base64
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import ScratchDatabase, write_version
from sibila_sqlmig import Migrator
from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.config import load_settings
from sibila_sqlmig.errors import ForeignKeyCheckError
from sibila_sqlmig.model import Header

PARENT = ("CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT);\n"
          "CREATE TABLE books (id INTEGER PRIMARY KEY, "
          "author_id INTEGER NOT NULL REFERENCES authors (id), title TEXT);\n"
          "INSERT INTO authors VALUES (1, 'Ada'), (2, 'Grace');\n"
          "INSERT INTO books VALUES (10, 1, 'Notes'), (11, 2, 'Compilers');\n")
# The rebuild as SQLite documents it: new table, copy, drop the old, rename.
REBUILD = ("CREATE TABLE authors_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
           "INSERT INTO authors_new SELECT id, coalesce(name, '') FROM authors{where};\n"
           "DROP TABLE authors;\n"
           "ALTER TABLE authors_new RENAME TO authors;\n")


def _config(tmp_path: Path, text: str = "") -> str:
    path = tmp_path / "sibila_sqlmig.yaml"
    path.write_text(text or "# defaults\n")
    return str(path)


def _dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def test_a_parent_rebuild_with_foreign_keys_off_keeps_the_children(
        sqlite_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_books", PARENT, "DROP TABLE books;\nDROP TABLE authors;\n")
    write_version(migrations, "002_rebuild", REBUILD.format(where=""), "SELECT 1;\n",
                  foreign_keys="off")
    config = _config(tmp_path, "sqlite_foreign_keys: true\n")
    args = ("--database", sqlite_db.url, "--migrations", str(migrations), "--config", config)
    result = cli("migrate", *args)
    assert result.code == 0, result.err
    assert sqlite_db.rows("SELECT id, author_id, title FROM books ORDER BY id") == [
        (10, 1, "Notes"), (11, 2, "Compilers")]
    assert "NOT NULL" in sqlite_db.rows(
        "SELECT sql FROM sqlite_master WHERE name = 'authors'")[0][0]


def test_without_the_header_the_same_rebuild_fails_with_foreign_keys_enforced(
        sqlite_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    """What the header is for: with enforcement on, the DROP of the parent fails."""
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_books", PARENT)
    write_version(migrations, "002_rebuild", REBUILD.format(where=""))
    config = _config(tmp_path, "sqlite_foreign_keys: true\n")
    result = cli("migrate", "--database", sqlite_db.url, "--migrations", str(migrations),
                 "--config", config)
    assert result.code == 1 and "FOREIGN KEY constraint failed" in result.err
    assert sqlite_db.versions() == ["001"]


def test_a_rebuild_that_orphans_children_rolls_back_and_lists_them(
        sqlite_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_books", PARENT)
    write_version(migrations, "002_rebuild", REBUILD.format(where=" WHERE id = 1"),
                  foreign_keys="off")
    args = ("--database", sqlite_db.url, "--migrations", str(migrations))
    assert cli("migrate", "--to", "1", *args).code == 0
    before = _dump(Path(sqlite_db.url.removeprefix("sqlite:///")))
    result = cli("migrate", *args, "--no-backup")
    assert result.code == 1
    assert "left 1 row(s) whose foreign key points to no parent" in result.err
    assert "table books rowid 11: references authors (foreign key 0)" in result.err
    assert "002_rebuild/up.sql" in result.err and "it was not recorded" in result.err
    assert sqlite_db.versions() == ["001"]
    after = [line for line in _dump(Path(sqlite_db.url.removeprefix("sqlite:///")))
             if "schema_migrations_journal" not in line]
    assert "books" in "".join(after)
    assert after == [line for line in before if "schema_migrations_journal" not in line]
    failed = sqlite_db.rows("SELECT version, outcome, error FROM schema_migrations_journal "
                            "ORDER BY id DESC LIMIT 1")[0]
    assert failed[:2] == ("002", "failed") and "rowid 11" in failed[2]


@pytest.mark.parametrize("fails", [False, True])
def test_the_previous_foreign_keys_setting_comes_back_on_every_path(
        sqlite_db: ScratchDatabase, fails: bool) -> None:
    backend = backend_for(load_settings(database=sqlite_db.url, config="/dev/null",
                                        environ={}))
    backend.connect(create=True)
    try:
        backend.query("PRAGMA foreign_keys = ON")
        backend.query("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        backend.query("CREATE TABLE child (parent_id INTEGER REFERENCES parent (id))")
        header = Header("rebuild", foreign_keys=False)
        expected = pytest.raises(ForeignKeyCheckError) if fails else contextlib.nullcontext()
        with expected, backend.file_transaction(header, path=Path("x/up.sql"),
                                                version="001", direction="up"):
            assert backend.query("PRAGMA foreign_keys") == [(0,)]  # off inside
            backend.execute("INSERT INTO child VALUES (7)" if fails else "SELECT 1")
        assert backend.query("PRAGMA foreign_keys") == [(1,)]
        assert backend.query("SELECT count(*) FROM child") == [(0,)]
    finally:
        backend.close()


def test_pragma_foreign_keys_inside_a_transactional_file_is_refused(
        sqlite_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_books", PARENT)
    write_version(migrations, "002_rebuild", "PRAGMA foreign_keys = OFF;\n"
                  + REBUILD.format(where="") + "PRAGMA foreign_keys=ON;\n")
    args = ("--database", sqlite_db.url, "--migrations", str(migrations))
    result = cli("migrate", *args)
    assert result.code == 2 and "002_rebuild/up.sql:1" in result.err
    assert "'PRAGMA foreign_keys' does nothing inside a transaction" in result.err
    assert "'foreign_keys: off'" in result.err
    assert sqlite_db.tables() == set()  # nothing ran, not even 001
    # Reading the pragma, or setting it in a file without a transaction, is allowed.
    (migrations / "002_rebuild" / "migration.yaml").write_text(
        "description: rebuild\ntransaction: false\n")
    assert cli("migrate", *args).code == 0


def test_the_foreign_keys_key_is_refused_where_it_means_nothing(
        postgres_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n", foreign_keys="off")
    result = cli("migrate", "--database", postgres_db.url, "--migrations", str(migrations))
    assert result.code == 2 and "'foreign_keys' is for SQLite's table rebuilds" in result.err
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n", foreign_keys="off",
                  transaction=False)
    sqlite = cli("migrate", "--database", str(tmp_path / "x.db"), "--migrations",
                 str(migrations))
    assert sqlite.code == 2 and "needs 'transaction: true'" in sqlite.err


def test_backup_then_restore_gives_back_the_content_before_the_run(
        tmp_path: Path, cli) -> None:
    database = tmp_path / "app.db"
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_books", PARENT, "DROP TABLE books;\nDROP TABLE authors;\n")
    args = ("--database", str(database), "--migrations", str(migrations))
    first = cli("migrate", *args)
    assert first.code == 0 and "backup:" not in first.err  # a new file: nothing to keep
    before = _dump(database)
    write_version(migrations, "002_more", "INSERT INTO authors VALUES (3, 'Edsger');\n"
                  "DELETE FROM books WHERE id = 10;\n", "SELECT 1;\n")
    second = cli("migrate", *args)
    assert second.code == 0
    [backup] = list(tmp_path.glob("app.db.*.before-up-002.sqlite-backup"))
    assert f"backup: {backup}" in second.err
    assert _dump(database) != before
    restored = cli("restore", *args)
    assert restored.code == 0, restored.err
    assert f"restored {backup}" in restored.out and "newest is 001" in restored.out
    assert _dump(database) == before
    [safety] = list(tmp_path.glob("app.db.*.before-restore.sqlite-backup"))
    assert str(safety) in restored.out
    # Restoring the safety backup undoes the restore.
    assert cli("restore", str(safety), *args).code == 0
    assert "002" in [row[0] for row in sqlite3.connect(database).execute(
        "SELECT version FROM schema_migrations")]


def test_a_backup_is_consistent_while_another_connection_reads(tmp_path: Path) -> None:
    database = tmp_path / "app.db"
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_books", PARENT)
    Migrator(database=str(database), migrations=migrations, config="/dev/null").migrate()
    reader = sqlite3.connect(database, isolation_level=None)
    reader.execute("PRAGMA journal_mode = WAL")
    before = _dump(database)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM books").fetchone() == (2,)
    write_version(migrations, "002_more", "INSERT INTO books VALUES (12, 1, 'More');\n")
    result = Migrator(database=str(database), migrations=migrations,
                      config="/dev/null").migrate()
    reader.execute("COMMIT")
    reader.close()
    assert result.backup is not None and _dump(Path(result.backup)) == before


def test_rotation_keeps_backup_keep_and_no_backup_when_nothing_runs(tmp_path: Path,
                                                                    cli) -> None:
    database = tmp_path / "app.db"
    migrations = tmp_path / "migrations"
    config = _config(tmp_path, "backup_keep: 2\n")
    for number in range(1, 6):
        write_version(migrations, f"00{number}_t{number}", f"CREATE TABLE t{number} (a INT);\n",
                      f"DROP TABLE t{number};\n")
    args = ("--database", str(database), "--migrations", str(migrations), "--config", config)
    for number in range(1, 6):
        assert cli("migrate", "--to", str(number), *args).code == 0
    backups = sorted(path.name for path in tmp_path.glob("*.sqlite-backup"))
    assert len(backups) == 2 and "before-up-004" in backups[0] and "before-up-005" in backups[1]
    assert cli("migrate", *args).code == 0  # nothing to apply: no backup
    assert cli("rollback", "--no-backup", *args).code == 0
    assert sorted(path.name for path in tmp_path.glob("*.sqlite-backup")) == backups
    assert cli("rollback", *args).code == 0
    assert any("before-down-004" in path.name for path in tmp_path.glob("*.sqlite-backup"))


def test_restore_is_for_sqlite_only(postgres_db: ScratchDatabase, tmp_path: Path,
                                    cli) -> None:
    result = cli("restore", "--database", postgres_db.url, "--migrations", str(tmp_path))
    assert result.code == 2 and "pg_restore" in result.err


def test_restore_without_a_backup_says_where_it_looked(tmp_path: Path, cli) -> None:
    database = tmp_path / "app.db"
    sqlite3.connect(database).close()
    result = cli("restore", "--database", str(database), "--migrations", str(tmp_path))
    assert result.code == 1 and str(tmp_path) in result.err


def test_on_connect_registers_a_function_that_a_migration_uses(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_encoded", "CREATE TABLE t (v TEXT);\n"
                  "INSERT INTO t VALUES (b64('sibila'));\n")
    database = tmp_path / "app.db"

    def setup(connection: sqlite3.Connection) -> None:
        connection.create_function("b64", 1,
                                   lambda text: base64.b64encode(text.encode()).decode())

    with pytest.raises(Exception, match="no such function: b64"):
        Migrator(database=str(database), migrations=migrations, config="/dev/null").migrate()
    Migrator(database=str(database), migrations=migrations, config="/dev/null",
             on_connect=setup).migrate()
    assert sqlite3.connect(database).execute("SELECT v FROM t").fetchall() == [
        (base64.b64encode(b"sibila").decode(),)]


def test_on_connect_is_given_the_driver_connection_on_every_engine(
        db: ScratchDatabase, tmp_path: Path) -> None:
    from sibila_sqlmig import run_migrations

    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n")
    seen: list[Any] = []
    assert run_migrations(db.url, migrations, config="/dev/null", on_connect=seen.append)
    assert seen and all(hasattr(connection, "cursor") for connection in seen)
    assert db.versions() == ["001"]


def test_sibila_run_migrations_takes_the_same_backups(tmp_path: Path) -> None:
    from sibila_sqlmig import run_migrations

    database = tmp_path / "sqlite.db"
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n")
    assert run_migrations(str(database), migrations, config="/dev/null")
    assert not list(tmp_path.glob("*.sqlite-backup"))  # the file was new
    write_version(migrations, "002_u", "CREATE TABLE u (a INT);\n")
    assert run_migrations(str(database), migrations, config="/dev/null")
    [backup] = list(tmp_path.glob("sqlite.db.*.before-up-002.sqlite-backup"))
    tables = {row[0] for row in sqlite3.connect(backup).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "t" in tables and "u" not in tables


def test_orphans_from_before_the_file_do_not_fail_a_rebuild(sqlite_db: ScratchDatabase,
                                                            tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_books", PARENT + "INSERT INTO books VALUES (99, 7, 'x');\n")
    write_version(migrations, "002_rebuild", REBUILD.format(where=""), foreign_keys="off")
    result = cli("migrate", "--database", sqlite_db.url, "--migrations", str(migrations))
    assert result.code == 0, result.err  # book 99's author 7 was missing before 002 ran


def test_a_failed_run_names_its_backup(tmp_path: Path, cli) -> None:
    import json

    database = tmp_path / "app.db"
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n")
    args = ("--database", str(database), "--migrations", str(migrations))
    assert cli("migrate", *args).code == 0
    write_version(migrations, "002_bad", "SELECT * FROM nope;\n")
    failed = cli("migrate", *args)
    [backup] = list(tmp_path.glob("app.db.*.before-up-002.sqlite-backup"))
    assert failed.code == 1 and f"The backup taken before this run is {backup}" in failed.err
    document = json.loads(cli("migrate", "--json", *args).out)
    assert document["ok"] is False and document["error"]["backup"].endswith(".sqlite-backup")


def test_a_backup_that_another_run_overtook_is_not_kept(tmp_path: Path) -> None:
    """Another process applied the version between this run's plan and its copy."""
    database = tmp_path / "app.db"
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n")
    first = Migrator(database=str(database), migrations=migrations, config="/dev/null")
    first.migrate()
    write_version(migrations, "002_u", "CREATE TABLE u (a INT);\n")
    planned_by_a_slow_run = first.migrate(dry_run=True).planned
    Migrator(database=str(database), migrations=migrations, config="/dev/null",
             backup=False).migrate()  # the other process, faster
    assert first._back_up("up", planned_by_a_slow_run) is None
    assert not list(tmp_path.glob("*.sqlite-backup"))


def test_on_connect_errors_are_reported_and_leave_no_file(tmp_path: Path) -> None:
    from sibila_sqlmig import check_database_health
    from sibila_sqlmig.errors import DatabaseError

    def broken(connection: object) -> None:
        raise ValueError("no such extension")

    database = tmp_path / "new.db"
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n")
    with pytest.raises(DatabaseError, match=r"on_connect \(.*broken\) failed.*no such "
                                            r"extension"):
        Migrator(database=str(database), migrations=migrations, config="/dev/null",
                 on_connect=broken).migrate()
    assert not database.exists()
    sqlite3.connect(database).close()
    assert check_database_health(str(database), migrations, config="/dev/null",
                                 on_connect=broken) is False  # never raises


def test_an_application_row_factory_does_not_break_the_bookkeeping(tmp_path: Path) -> None:
    def dict_rows(connection: sqlite3.Connection) -> None:
        connection.row_factory = lambda cursor, row: {
            column[0]: value for column, value in zip(cursor.description, row, strict=True)}

    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n", "DROP TABLE t;\n")
    migrator = Migrator(database=str(tmp_path / "app.db"), migrations=migrations,
                        config="/dev/null", on_connect=dict_rows)
    migrator.migrate()
    assert [run.outcome for run in migrator.history().entries] == ["applied"]
    migrator.rollback()
