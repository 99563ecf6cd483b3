"""The journal: every run recorded with its SQL, history, diff, rollback of a vanished
version, and the rollback: header key, on every engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import ScratchDatabase, write_version
from sibila_sqlmig import Migrator
from sibila_sqlmig.errors import JournalMissingError, RollbackRefused, UsageError
from sibila_sqlmig.journal import SQL_CAP

JOURNAL = "schema_migrations_journal"
USERS_UP = "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(50));\n"
USERS_DOWN = "DROP TABLE users;\n"
TAGS_UP = "CREATE TABLE tags (id INTEGER, tag VARCHAR(20));\nCREATE INDEX tags_tag ON tags (tag);\n"
TAGS_DOWN = "DROP TABLE tags;\n"


def _migrator(db: ScratchDatabase, migrations: Path) -> Migrator:
    return Migrator(database=db.url, migrations=migrations, config="/dev/null")


def _two_versions(migrations: Path) -> None:
    write_version(migrations, "001_users", USERS_UP, USERS_DOWN)
    write_version(migrations, "002_tags", TAGS_UP, TAGS_DOWN)


def _journal(db: ScratchDatabase) -> list[dict[str, Any]]:
    cursor = db.admin.cursor()
    cursor.execute(f"SELECT * FROM {JOURNAL} ORDER BY id")
    names = [column[0] for column in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    cursor.close()
    return rows


def test_a_run_is_journaled_with_its_sql_and_the_tracking_table_keeps_four_columns(
        db: ScratchDatabase, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    _two_versions(migrations)
    _migrator(db, migrations).migrate()
    rows = _journal(db)
    assert [(row["version"], row["direction"], row["outcome"]) for row in rows] == [
        ("001", "up", "applied"), ("002", "up", "applied")]
    tags = rows[1]
    assert tags["sql_text"] == TAGS_UP and tags["down_sql"] == TAGS_DOWN
    assert tags["statements"] == 2 and tags["attempt"] == 1 and bool(tags["transactional"])
    assert tags["checksum"] == tags["sql_checksum"] and len(tags["checksum"]) == 64
    assert tags["rollback_mode"] == "sql" and tags["file_path"].endswith("002_tags/up.sql")
    assert tags["host"] and tags["os_user"] and tags["tool_version"]
    assert tags["error"] is None and tags["seconds"] >= 0
    # The tracking table is exactly Sibila's four columns.
    cursor = db.admin.cursor()
    cursor.execute("SELECT * FROM schema_migrations")
    assert [column[0].lower() for column in cursor.description] == [
        "version", "description", "applied_at", "checksum"]
    cursor.close()


def test_a_failed_run_is_journaled_after_its_rollback(db: ScratchDatabase,
                                                      tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_users", USERS_UP, USERS_DOWN)
    write_version(migrations, "002_broken", "INSERT INTO users (id, name) VALUES (1, 'a');\n"
                  "INSERT INTO nowhere VALUES (1);\n")
    with pytest.raises(Exception, match="nowhere"):
        _migrator(db, migrations).migrate()
    failed = _journal(db)[-1]
    assert (failed["version"], failed["outcome"], failed["statements"]) == ("002", "failed", 1)
    assert "up.sql:2" in failed["error"] and "nowhere" in failed["error"]
    assert db.versions() == ["001"]
    assert db.rows("SELECT count(*) FROM users") == [(0,)]  # the file was rolled back


def test_a_failure_in_a_file_without_transaction_journals_what_ran(
        db: ScratchDatabase, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_steps", "CREATE TABLE a (id INTEGER);\n"
                  "CREATE TABLE b (id INTEGER);\nSELECT * FROM nowhere;\n", transaction=False)
    with pytest.raises(Exception, match="nowhere"):
        _migrator(db, migrations).migrate()
    failed = _journal(db)[-1]
    assert (failed["outcome"], failed["statements"], bool(failed["transactional"])) == (
        "failed", 2, False)
    assert {"a", "b"} <= db.tables()


def test_rollback_is_journaled_with_the_down_sql_that_ran(db: ScratchDatabase,
                                                          tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    _two_versions(migrations)
    migrator = _migrator(db, migrations)
    migrator.migrate()
    migrator.rollback()
    last = _journal(db)[-1]
    assert (last["version"], last["direction"], last["outcome"]) == ("002", "down",
                                                                     "rolled back")
    assert last["sql_text"] == TAGS_DOWN and last["down_sql"] is None
    assert last["file_path"].endswith("002_tags/down.sql")


def test_a_vanished_version_rolls_back_with_the_down_sql_kept_at_apply_time(
        db: ScratchDatabase, tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    _two_versions(migrations)
    _migrator(db, migrations).migrate()
    shutil.move(str(migrations / "002_tags"), str(tmp_path / "other_branch"))
    assert "tags" in db.tables()
    result = cli("rollback", "--database", db.url, "--migrations", str(migrations))
    assert result.code == 0, result.err
    assert "its folder is gone: ran the down.sql the journal kept" in result.out
    assert "tags" not in db.tables() and db.versions() == ["001"]
    last = _journal(db)[-1]
    assert (last["version"], last["outcome"], last["sql_text"]) == ("002", "rolled back",
                                                                    TAGS_DOWN)
    assert "as applied (journal row 2" in last["file_path"]


def test_a_vanished_version_applied_before_the_journal_is_refused_naming_repair(
        db: ScratchDatabase, tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    _two_versions(migrations)
    _migrator(db, migrations).migrate()
    cursor = db.admin.cursor()
    cursor.execute(f"DROP TABLE {JOURNAL}")  # as a database of the previous release
    cursor.close()
    shutil.rmtree(migrations / "002_tags")
    result = cli("rollback", "--database", db.url, "--migrations", str(migrations))
    assert result.code == 1
    assert "applied before the journal existed" in result.err
    assert "repair --forget-missing" in result.err and "Nothing was rolled back" in result.err
    assert db.versions() == ["001", "002"] and "tags" in db.tables()


def test_a_database_of_the_previous_release_is_adopted(db: ScratchDatabase,
                                                      tmp_path: Path, cli) -> None:
    """A tracking table without a journal (Sibila's, or an earlier release's)."""
    cursor = db.admin.cursor()
    cursor.execute("CREATE TABLE schema_migrations (version VARCHAR(255) PRIMARY KEY, "
                   "description TEXT, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
                   "checksum TEXT)")
    cursor.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(50))")
    cursor.execute("INSERT INTO schema_migrations (version, description) VALUES "
                   "('1', 'users')")
    cursor.close()
    migrations = tmp_path / "migrations"
    _two_versions(migrations)
    before = cli("history", "--database", db.url, "--migrations", str(migrations))
    assert before.code == 0 and "No journal" in before.out
    assert JOURNAL not in db.tables()
    result = cli("migrate", "--database", db.url, "--migrations", str(migrations))
    assert result.code == 0, result.err
    assert [row["version"] for row in _journal(db)] == ["002"]
    diff = cli("diff", "1", "--database", db.url, "--migrations", str(migrations))
    assert diff.code == 1 and "before the journal existed" in diff.err


def test_diff_shows_what_changed_in_an_applied_file(db: ScratchDatabase, tmp_path: Path,
                                                   cli) -> None:
    migrations = tmp_path / "migrations"
    _two_versions(migrations)
    _migrator(db, migrations).migrate()
    args = ("--database", db.url, "--migrations", str(migrations))
    same = cli("diff", "2", *args)
    assert same.code == 0 and "as it was when it ran" in same.out
    (migrations / "002_tags" / "up.sql").write_text(TAGS_UP.replace("tag VARCHAR(20)",
                                                                    "tag VARCHAR(40)"))
    changed = cli("diff", "002", *args)
    assert changed.code == 1
    assert "-CREATE TABLE tags (id INTEGER, tag VARCHAR(20));" in changed.out
    assert "+CREATE TABLE tags (id INTEGER, tag VARCHAR(40));" in changed.out
    assert "--- 002/up.sql as applied" in changed.out
    status = cli("status", *args)
    assert "`sibila-sqlmig diff 002` shows the change" in status.out


def test_history_lists_every_run_newest_first(sqlite_db: ScratchDatabase, tmp_path: Path,
                                              cli) -> None:
    migrations = tmp_path / "migrations"
    _two_versions(migrations)
    args = ("--database", sqlite_db.url, "--migrations", str(migrations))
    assert cli("migrate", *args).code == 0
    assert cli("rollback", *args).code == 0
    header, *shown = cli("history", *args).out.splitlines()
    assert "started (UTC)" in header
    assert [line.split()[3:5] for line in shown] == [["002", "down"], ["002", "up"],
                                                       ["001", "up"]]
    one = json.loads(cli("history", "2", "--json", *args).out)
    assert [(run["version"], run["outcome"]) for run in one["runs"]] == [
        ("002", "rolled back"), ("002", "applied")]
    assert "sql" not in one["runs"][0] and one["runs"][0]["sql_checksum"]
    limited = json.loads(cli("history", "--limit", "1", "--json", *args).out)
    assert len(limited["runs"]) == 1
    assert cli("history", "--limit", "0", *args).code == 2


def test_baseline_and_repair_are_journaled(sqlite_db: ScratchDatabase, tmp_path: Path,
                                           cli) -> None:
    migrations = tmp_path / "migrations"
    _two_versions(migrations)
    args = ("--database", sqlite_db.url, "--migrations", str(migrations))
    assert cli("baseline", "1", *args).code == 0
    assert cli("migrate", *args).code == 0
    (migrations / "002_tags" / "up.sql").write_text(TAGS_UP + "-- a comment\n")
    assert cli("repair", *args).code == 0
    outcomes = [(row["version"], row["outcome"]) for row in _journal(sqlite_db)]
    assert outcomes == [("001", "baselined"), ("002", "applied"),
                        ("002", "checksum accepted")]


def test_files_over_the_cap_keep_only_their_checksum(sqlite_db: ScratchDatabase,
                                                     tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    rows = ",".join(f"({n}, '{'x' * 40}')" for n in range(SQL_CAP // 40))
    write_version(migrations, "001_data", f"CREATE TABLE d (id INTEGER, v TEXT);\n"
                  f"INSERT INTO d VALUES {rows};\n", "DROP TABLE d;\n")
    args = ("--database", sqlite_db.url, "--migrations", str(migrations))
    assert cli("migrate", *args).code == 0
    row = _journal(sqlite_db)[0]
    assert row["sql_text"] is None and len(row["sql_checksum"]) == 64
    assert row["down_sql"] == "DROP TABLE d;\n"
    diff = cli("diff", "1", *args)
    assert diff.code == 0 and "only the checksum" in diff.out
    # A vanished version whose down.sql was kept still rolls back.
    shutil.rmtree(migrations / "001_data")
    assert cli("rollback", *args).code == 0 and "d" not in sqlite_db.tables()


def test_a_large_down_sql_of_a_vanished_version_is_refused(sqlite_db: ScratchDatabase,
                                                           tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    down = "DROP TABLE d;\n" + "-- padding\n" * (SQL_CAP // 10)
    write_version(migrations, "001_data", "CREATE TABLE d (id INTEGER);\n", down)
    _migrator(sqlite_db, migrations).migrate()
    shutil.rmtree(migrations / "001_data")
    with pytest.raises(RollbackRefused, match="larger than the journal keeps"):
        _migrator(sqlite_db, migrations).rollback()


@pytest.mark.parametrize("engine", ["sqlite_db", "postgres_db"])
def test_rollback_noop_and_irreversible(engine: str, tmp_path: Path, cli,
                                        request: pytest.FixtureRequest) -> None:
    db: ScratchDatabase = request.getfixturevalue(engine)
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_users", USERS_UP, "-- gone with the table of 002\n",
                  rollback="irreversible")
    write_version(migrations, "002_seed", "INSERT INTO users VALUES (1, 'a');\n",
                  "-- the rows go with the table\n", rollback="noop")
    write_version(migrations, "003_comment", "CREATE TABLE c (id INTEGER);\n",
                  "-- nothing written yet\n")
    args = ("--database", db.url, "--migrations", str(migrations))
    assert cli("migrate", *args).code == 0
    refused = cli("rollback", *args)
    assert refused.code == 1
    assert "only comments" in refused.err and "'rollback: noop'" in refused.err
    assert "'rollback: irreversible'" in refused.err
    assert db.versions() == ["001", "002", "003"]
    # Saying there is nothing to undo lets it roll back (its table stays).
    (migrations / "003_comment" / "migration.yaml").write_text(
        "description: comment\nrollback: noop\n")
    assert cli("rollback", *args).code == 0 and "c" in db.tables()
    noop = cli("rollback", *args)
    assert noop.code == 0, noop.err
    assert db.versions() == ["001"] and db.rows("SELECT count(*) FROM users") == [(1,)]
    irreversible = cli("rollback", *args)
    assert irreversible.code == 1 and "says 'rollback: irreversible'" in irreversible.err
    assert db.versions() == ["001"]


def test_rollback_noop_with_statements_in_down_sql_is_a_problem(
        sqlite_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_users", USERS_UP, USERS_DOWN, rollback="noop")
    args = ("--database", sqlite_db.url, "--migrations", str(migrations))
    refused = cli("migrate", *args)  # found when it is applied, not when it is too late
    assert refused.code == 2 and "'rollback: noop'" in refused.err
    assert "001_users/down.sql: holds statements" in refused.err
    assert sqlite_db.tables() == set()
    (migrations / "001_users" / "migration.yaml").write_text("description: users\n")
    assert cli("migrate", *args).code == 0
    (migrations / "001_users" / "migration.yaml").write_text(
        "description: users\nrollback: noop\n")
    result = cli("rollback", *args)
    assert result.code == 2 and "'rollback: noop'" in result.err
    assert sqlite_db.versions() == ["001"]


def test_an_unknown_rollback_mode_is_a_header_problem(tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_users", USERS_UP, USERS_DOWN, rollback="maybe")
    result = cli("migrate", "--database", str(tmp_path / "x.db"), "--migrations",
                 str(migrations))
    assert result.code == 2 and "'rollback' must be one of sql, noop, irreversible" in result.err


def test_diff_without_any_journal_row_fails_clearly(sqlite_db: ScratchDatabase,
                                                    tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    _two_versions(migrations)
    with pytest.raises(JournalMissingError, match="has no journal yet"):
        _migrator(sqlite_db, migrations).diff("1")
    _migrator(sqlite_db, migrations).migrate()
    with pytest.raises(UsageError, match="no such version in the migrations folder or the "
                                         "journal"):
        _migrator(sqlite_db, migrations).diff("7")


def test_sibila_manager_gives_the_history(sqlite_db: ScratchDatabase, tmp_path: Path) -> None:
    from sibila_sqlmig import MigrationManager

    migrations = tmp_path / "migrations"
    _two_versions(migrations)
    manager = MigrationManager(sqlite_db.url, migrations, config="/dev/null")
    assert manager.get_history() == []
    assert manager.migrate()
    history = manager.get_history()
    assert [(run["version"], run["outcome"]) for run in history] == [
        ("002", "applied"), ("001", "applied")]
    assert "sql" not in history[0] and history[0]["started_at"]


@pytest.mark.parametrize(("engine", "url_suffix", "comment"), [
    ("mysql_db", "?charset=utf8", "-- adds the \U0001f389 table\n"),  # 3-byte charset
    ("postgres_db", "", "-- a NUL \x00 byte\n"),  # PostgreSQL text cannot hold NUL
])
def test_a_journal_row_the_database_refuses_never_fails_the_migration(
        engine: str, url_suffix: str, comment: str, tmp_path: Path, cli,
        request: pytest.FixtureRequest) -> None:
    db: ScratchDatabase = request.getfixturevalue(engine)
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_party", "CREATE TABLE party (x INT);\n" + comment)
    write_version(migrations, "002_more", "CREATE TABLE more_rows (x INT);\n")
    result = cli("migrate", "--database", db.url + url_suffix, "--migrations",
                 str(migrations))
    assert result.code == 0, result.err
    assert "version 001 up ran and is recorded, but its journal row could not be written" \
        in result.err
    assert db.versions() == ["001", "002"] and {"party", "more_rows"} <= db.tables()
    assert [row["version"] for row in _journal(db)] == ["002"]


def test_a_vanished_version_recorded_again_by_baseline_is_not_rolled_back_with_old_sql(
        sqlite_db: ScratchDatabase, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_x", "CREATE TABLE x1 (a INT);\n", "DROP TABLE x1;\n")
    migrator = _migrator(sqlite_db, migrations)
    migrator.migrate()
    migrator.rollback()
    write_version(migrations, "001_x", "CREATE TABLE x2 (a INT);\n", "DROP TABLE x2;\n")
    migrator.baseline("1")
    shutil.rmtree(migrations / "001_x")
    with pytest.raises(RollbackRefused, match="recorded by baseline"):
        migrator.rollback()
    assert sqlite_db.versions() == ["001"]


def test_a_failing_kept_down_sql_says_where_it_came_from(sqlite_db: ScratchDatabase,
                                                         tmp_path: Path, cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_x", "CREATE TABLE x (a INT);\n", "DROP TABLE nope;\n")
    args = ("--database", sqlite_db.url, "--migrations", str(migrations))
    assert cli("migrate", *args).code == 0
    shutil.rmtree(migrations / "001_x")
    result = cli("rollback", *args)
    assert result.code == 1 and "no such table: nope" in result.err
    assert "This is the down.sql the journal kept" in result.err
    assert "repair --forget-missing" in result.err


def test_diff_marks_a_last_line_without_newline(sqlite_db: ScratchDatabase, tmp_path: Path,
                                                cli) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_c", "CREATE TABLE c (x INT);", "DROP TABLE c;\n")
    args = ("--database", sqlite_db.url, "--migrations", str(migrations))
    assert cli("migrate", *args).code == 0
    (migrations / "001_c" / "up.sql").write_text("CREATE TABLE c (x INT);\n-- more\n")
    shown = cli("diff", "1", *args).out.splitlines()
    assert shown[3:] [:4] == ["-CREATE TABLE c (x INT);", "\\ No newline at end of file",
                              "+CREATE TABLE c (x INT);", "+-- more"]


def test_postgresql_keeps_the_tracking_row_when_the_journal_row_is_refused(
        postgres_db: ScratchDatabase, tmp_path: Path, cli) -> None:
    """The tracking row and the journal row go in one statement after a savepoint; a
    journal row the server refuses is undone alone."""
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_users", USERS_UP, USERS_DOWN)
    args = ("--database", postgres_db.url, "--migrations", str(migrations))
    assert cli("migrate", *args).code == 0
    postgres_db.admin.execute(f"ALTER TABLE {JOURNAL} ADD CONSTRAINT refuse_002 "
                              "CHECK (version <> '002')")
    write_version(migrations, "002_tags", TAGS_UP, TAGS_DOWN)
    result = cli("migrate", *args)
    assert result.code == 0, result.err
    assert "its journal row could not be written" in result.err and "refuse_002" in result.err
    assert postgres_db.versions() == ["001", "002"] and "tags" in postgres_db.tables()
    assert cli("rollback", *args).code == 0  # the down: both rows in one statement again
    assert postgres_db.versions() == ["001"]
