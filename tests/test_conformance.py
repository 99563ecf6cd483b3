"""The conformance suite: every scenario on every engine (SQLite, PostgreSQL, MariaDB).

Each test gets its own scratch database (see conftest.py), so they run in
any order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import ScratchDatabase, write_version


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    return folder


def _args(db: ScratchDatabase, migrations: Path, *extra: str) -> list[str]:
    return [*extra, "--database", db.url, "--migrations", str(migrations)]


def _five_versions(migrations: Path, failing_up: str | None = None) -> None:
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n", "DROP TABLE t1;\n")
    write_version(migrations, "002_two", "INSERT INTO t1 VALUES (2);\n",
                  "DELETE FROM t1 WHERE a = 2;\n")
    write_version(migrations, "003_three",
                  failing_up or "INSERT INTO t1 VALUES (3);\n", "DELETE FROM t1 WHERE a = 3;\n")
    write_version(migrations, "004_four", "CREATE TABLE t4 (a INT);\n", "DROP TABLE t4;\n")
    write_version(migrations, "005_five", "INSERT INTO t4 VALUES (5);\n",
                  "DELETE FROM t4 WHERE a = 5;\n")


def test_versions_apply_in_numeric_order(db: ScratchDatabase, migrations: Path, cli) -> None:
    write_version(migrations, "1_log", "CREATE TABLE log (n INT, seq INT);\n")
    for number in ("2", "10", "100"):
        write_version(migrations, f"{number}_step",
                      f"INSERT INTO log SELECT {number}, COUNT(*) FROM log;\n")
    result = cli("migrate", *_args(db, migrations))
    assert result.code == 0, result.err
    assert sorted(db.rows("SELECT seq, n FROM log")) == [(0, 2), (1, 10), (2, 100)]
    assert db.versions() == ["1", "10", "100", "2"]
    assert [line.split()[1] for line in result.out.splitlines()[:4]] == ["1", "2", "10", "100"]


def test_failure_in_the_middle_of_a_file_applies_nothing_of_it(
        db: ScratchDatabase, migrations: Path, cli) -> None:
    _five_versions(migrations, "INSERT INTO t1 VALUES (3);\n\n"
                               "INSERT INTO t1 VALUES (3, 'too', 'many');\n")
    result = cli("migrate", *_args(db, migrations))
    assert result.code == 1
    up = migrations / "003_three" / "up.sql"
    assert f"{up}:3: statement failed applying version 003" in result.err
    assert "Traceback" not in result.err
    assert db.versions() == ["001", "002"]
    assert db.rows("SELECT a FROM t1") == [(2,)]  # the first INSERT of 003 was rolled back
    assert "t4" not in db.tables()


def test_transactional_ddl_is_rolled_back_on_failure(db: ScratchDatabase, migrations: Path,
                                                     cli) -> None:
    write_version(migrations, "001_ddl", "CREATE TABLE made (a INT);\n"
                  "INSERT INTO made VALUES (1);\nINSERT INTO missing_table VALUES (1);\n")
    result = cli("migrate", *_args(db, migrations))
    assert result.code == 1
    assert "up.sql:3:" in result.err
    assert db.versions() == []
    if db.engine == "mysql":
        # DDL committed implicitly: the error says exactly what stayed.
        assert "line 1: CREATE TABLE made (a INT)" in result.err
        assert "commits DDL implicitly" in result.err
        assert db.rows("SELECT a FROM made") == []  # the INSERT after the DDL rolled back
    else:
        assert "Nothing of up.sql stayed in the database, and it was not recorded" \
            in result.err
        assert "made" not in db.tables()


def test_rollback_runs_down_sql_and_deletes_the_row(db: ScratchDatabase, migrations: Path,
                                                    cli) -> None:
    _five_versions(migrations)
    assert cli("migrate", *_args(db, migrations)).code == 0
    result = cli("rollback", *_args(db, migrations))
    assert result.code == 0, result.err
    assert "rolled back 005" in result.out
    assert db.versions() == ["001", "002", "003", "004"]
    assert db.rows("SELECT a FROM t4") == []
    assert cli("rollback", *_args(db, migrations, "--steps", "2")).code == 0
    assert db.versions() == ["001", "002"]
    assert "t4" not in db.tables()
    assert db.rows("SELECT a FROM t1") == [(2,)]
    assert cli("rollback", *_args(db, migrations, "--to", "1")).code == 0
    assert db.versions() == ["001"]
    assert db.rows("SELECT a FROM t1") == []
    assert cli("rollback", *_args(db, migrations, "--to", "0")).code == 0
    assert db.versions() == [] and "t1" not in db.tables()
    nothing = cli("rollback", *_args(db, migrations))
    assert nothing.code == 1
    assert "Nothing to roll back" in nothing.err
    assert cli("migrate", *_args(db, migrations, "--to", "1")).code == 0
    too_many = cli("rollback", *_args(db, migrations, "--steps", "2"))
    assert too_many.code == 1 and "only 1 version(s) are applied (001)" in too_many.err
    assert db.versions() == ["001"]


def test_failing_down_sql_keeps_the_version_recorded(db: ScratchDatabase, migrations: Path,
                                                     cli) -> None:
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\nINSERT INTO t1 VALUES (1);\n",
                  "DELETE FROM t1;\nDROP TABLE no_such_table;\n")
    assert cli("migrate", *_args(db, migrations)).code == 0
    result = cli("rollback", *_args(db, migrations))
    assert result.code == 1
    assert "down.sql:2: statement failed rolling back version 001" in result.err
    assert "was applied" not in result.err and "not recorded" not in result.err
    assert "run rollback again" in result.err
    assert db.versions() == ["001"]
    if db.engine == "mysql":  # MySQL commits before a DDL statement, even one that fails
        assert "Version 001: it is still recorded as applied. These statements of down.sql " \
            "had already run" in result.err
        assert "line 1: DELETE FROM t1" in result.err
        assert db.rows("SELECT a FROM t1") == []
    else:
        assert "Nothing of down.sql stayed in the database, and it is still recorded as " \
            "applied" in result.err
        assert db.rows("SELECT a FROM t1") == [(1,)]  # the DELETE was rolled back too


def test_rollback_refuses_a_comment_only_down_sql(db: ScratchDatabase, migrations: Path,
                                                  cli) -> None:
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n", "DROP TABLE t1;\n")
    write_version(migrations, "002_two", "CREATE TABLE t2 (a INT);\n",
                  "-- cannot be undone: data is reshaped\n")
    assert cli("migrate", *_args(db, migrations)).code == 0
    result = cli("rollback", *_args(db, migrations, "--steps", "2"))
    assert result.code == 1
    assert "002_two/down.sql holds only comments" in result.err
    assert db.versions() == ["001", "002"]  # nothing rolled back, not even 001's turn


def test_rollback_usage_errors(db: ScratchDatabase, migrations: Path, cli) -> None:
    _five_versions(migrations)
    assert cli("migrate", *_args(db, migrations)).code == 0
    steps = cli("rollback", *_args(db, migrations, "--steps", "0"))
    assert steps.code == 2 and "--steps 0" in steps.err
    unknown = cli("rollback", *_args(db, migrations, "--to", "77"))
    assert unknown.code == 2 and "--to 77: no such version" in unknown.err
    assert db.versions() == ["001", "002", "003", "004", "005"]


def test_edited_migration_is_caught_until_repair(db: ScratchDatabase, migrations: Path,
                                                 cli) -> None:
    folder = write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    assert cli("migrate", *_args(db, migrations)).code == 0
    up = folder / "up.sql"
    up.write_bytes(b"\xef\xbb\xbfCREATE TABLE t1 (a INT);\r\n")  # BOM and CRLF: not an edit
    assert cli("verify", *_args(db, migrations)).code == 0
    up.write_text("CREATE TABLE t1 (a BIGINT);\n")
    status = cli("status", *_args(db, migrations, "--json"))
    assert json.loads(status.out)["migrations"][0]["state"] == "edited"
    verify = cli("verify", *_args(db, migrations))
    assert verify.code == 1 and "001" in verify.out and "edited" in verify.out
    write_version(migrations, "002_two", "CREATE TABLE t2 (a INT);\n")
    refused = cli("migrate", *_args(db, migrations))
    assert refused.code == 1 and "repair" in refused.err
    assert db.versions() == ["001"]
    assert cli("repair", *_args(db, migrations)).code == 0
    assert cli("verify", *_args(db, migrations)).code == 0
    assert cli("migrate", *_args(db, migrations)).code == 0
    assert db.versions() == ["001", "002"]


def test_missing_folder_fails_verify_and_migrate(db: ScratchDatabase, migrations: Path,
                                                 cli) -> None:
    folder = write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    write_version(migrations, "002_two", "CREATE TABLE t2 (a INT);\n")
    assert cli("migrate", *_args(db, migrations)).code == 0
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    verify = cli("verify", *_args(db, migrations))
    assert verify.code == 1 and "001" in verify.out and "folder" in verify.out
    migrate = cli("migrate", *_args(db, migrations))
    assert migrate.code == 1 and "001" in migrate.err and "not in the migrations folder" in \
        migrate.err
    assert cli("repair", *_args(db, migrations, "--forget-missing")).code == 0
    assert db.versions() == ["002"]
    assert cli("verify", *_args(db, migrations)).code == 0


def test_out_of_order_pending_version_is_refused_unless_asked(
        db: ScratchDatabase, migrations: Path, cli) -> None:
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    write_version(migrations, "003_three", "CREATE TABLE t3 (a INT);\n")
    assert cli("migrate", *_args(db, migrations)).code == 0
    write_version(migrations, "002_two", "CREATE TABLE t2 (a INT);\n")
    refused = cli("migrate", *_args(db, migrations))
    assert refused.code == 1
    assert "002 are older than the newest applied version (003)" in refused.err
    assert "--out-of-order" in refused.err
    assert cli("migrate", *_args(db, migrations, "--out-of-order")).code == 0
    assert db.versions() == ["001", "002", "003"]


def test_migrate_to_a_version_stops_there(db: ScratchDatabase, migrations: Path, cli) -> None:
    _five_versions(migrations)
    assert cli("migrate", *_args(db, migrations, "--to", "3")).code == 0
    assert db.versions() == ["001", "002", "003"]
    unknown = cli("migrate", *_args(db, migrations, "--to", "9"))
    assert unknown.code == 2 and "--to 9" in unknown.err
    assert db.versions() == ["001", "002", "003"]


def test_baseline_records_without_running(db: ScratchDatabase, migrations: Path, cli) -> None:
    _five_versions(migrations)
    result = cli("baseline", "2", *_args(db, migrations))
    assert result.code == 0, result.err
    assert db.versions() == ["001", "002"]
    assert "t1" not in db.tables()  # nothing ran
    assert cli("verify", *_args(db, migrations)).code == 0
    checksums = db.rows("SELECT checksum FROM schema_migrations")
    assert all(len(row[0]) == 64 for row in checksums)


def test_dry_run_lists_statements_and_changes_nothing(db: ScratchDatabase, migrations: Path,
                                                      cli) -> None:
    write_version(migrations, "001_one", "-- make it\nCREATE TABLE t1 (a INT);\n\n"
                  "INSERT INTO t1 VALUES (1);\n", "DROP TABLE t1;\n")
    result = cli("migrate", *_args(db, migrations, "--dry-run"))
    assert result.code == 0
    assert "line    2: CREATE TABLE t1 (a INT)" in result.out
    assert "line    4: INSERT INTO t1 VALUES (1)" in result.out
    as_json = json.loads(cli("migrate", *_args(db, migrations, "--dry-run", "--json")).out)
    assert as_json["migrations"][0]["statements"] == [
        {"line": 2, "sql": "CREATE TABLE t1 (a INT)"},
        {"line": 4, "sql": "INSERT INTO t1 VALUES (1)"},
    ]
    assert "schema_migrations" not in db.tables()  # a dry run writes nothing, not even that
    assert "t1" not in db.tables()
    assert cli("migrate", *_args(db, migrations)).code == 0
    back = json.loads(cli("rollback", *_args(db, migrations, "--dry-run", "--json")).out)
    assert back["direction"] == "down" and back["migrations"][0]["version"] == "001"
    assert db.versions() == ["001"]


def test_status_json_shape(db: ScratchDatabase, migrations: Path, cli) -> None:
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    write_version(migrations, "002_two", "CREATE TABLE t2 (a INT);\n")
    assert cli("migrate", *_args(db, migrations, "--to", "1")).code == 0
    data = json.loads(cli("status", *_args(db, migrations, "--json")).out)
    assert data["table"] == "schema_migrations"
    assert data["counts"] == {"applied": 1, "pending": 1, "edited": 0, "missing": 0,
                              "unverified": 0}
    first, second = data["migrations"]
    assert first["state"] == "applied" and first["checksum"] == first["file_checksum"]
    assert first["applied_at"]
    assert second == {"version": "002", "description": "two", "state": "pending",
                      "applied_at": None, "checksum": None,
                      "file_checksum": second["file_checksum"], "out_of_order": False}


def test_transaction_false_runs_each_statement_and_reports_what_ran(
        db: ScratchDatabase, migrations: Path, cli) -> None:
    write_version(migrations, "001_nontx", "CREATE TABLE t1 (a INT);\nINSERT INTO t1 VALUES (1);\n"
                  "INSERT INTO nope VALUES (1);\n", transaction=False)
    result = cli("migrate", *_args(db, migrations))
    assert result.code == 1
    assert "up.sql:3:" in result.err
    assert "line 1: CREATE TABLE t1 (a INT)" in result.err
    assert "line 2: INSERT INTO t1 VALUES (1)" in result.err
    assert db.versions() == []
    assert db.rows("SELECT a FROM t1") == [(1,)]


def test_transaction_control_in_a_transactional_file_is_refused(
        db: ScratchDatabase, migrations: Path, cli) -> None:
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    write_version(migrations, "002_tx", "BEGIN;\nCREATE TABLE t2 (a INT);\nCOMMIT;\n")
    result = cli("migrate", *_args(db, migrations))
    assert result.code == 2
    up = migrations / "002_tx" / "up.sql"
    assert f"{up}:1: 'BEGIN' controls the transaction" in result.err
    assert f"{up}:3: 'COMMIT' controls the transaction" in result.err
    assert "transaction: false" in result.err
    assert "t1" not in db.tables()  # refused before anything ran


@pytest.mark.parametrize("server", ["postgres_db", "mysql_db"])  # SQLite URLs have none
def test_password_never_shown(server: str, migrations: Path, cli,
                              request: pytest.FixtureRequest) -> None:
    db: ScratchDatabase = request.getfixturevalue(server)
    secret = "s3cret-Pa55"
    user_part = db.url.split("://", 1)[1].split("@", 1)[0]
    url = db.url.replace(f"{user_part}@", f"{user_part}:{secret}@", 1)
    write_version(migrations, "001_bad", "INSERT INTO nope VALUES (1);\n")
    outputs = []
    for command in (["status"], ["migrate"], ["migrate", "--dry-run"], ["verify"]):
        result = cli(*command, "--database", url, "--migrations", str(migrations))
        outputs.append(result.out + result.err)
    unreachable = re.sub(r":\d+/", ":1/", url)  # nothing listens on port 1
    refused = cli("status", "--database", unreachable, "--migrations", str(migrations))
    outputs.append(refused.out + refused.err)
    assert refused.code == 1
    joined = "\n".join(outputs)
    assert secret not in joined
    assert "***" in joined


def test_named_tracking_table(db: ScratchDatabase, migrations: Path, cli) -> None:
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    assert cli("migrate", *_args(db, migrations, "--table", "app_versions")).code == 0
    assert db.versions("app_versions") == ["001"]
    assert "schema_migrations" not in db.tables()
    bad = cli("migrate", *_args(db, migrations, "--table", "x; DROP TABLE t1"))
    assert bad.code == 2 and "Invalid table name" in bad.err


def test_header_and_footer_comments_do_not_hide_the_statement(db: ScratchDatabase,
                                                              migrations: Path, cli) -> None:
    """Only the dialect's splitter decides whether a file holds a statement."""
    write_version(migrations, "001_framed",
                  "/* header: why this change */ CREATE TABLE framed (id INT); /* footer */\n",
                  "/* header */ DROP TABLE framed; /* footer */\n")
    write_version(migrations, "002_commented",
                  "-- a line comment\n/* a block\n   comment */\nINSERT INTO framed VALUES (1);"
                  "\n-- trailing\n", "/* undo */ DELETE FROM framed; -- all of it\n")
    result = cli("migrate", *_args(db, migrations))
    assert result.code == 0, result.err
    assert db.rows("SELECT id FROM framed") == [(1,)]
    assert cli("rollback", *_args(db, migrations, "--steps", "2")).code == 0
    assert "framed" not in db.tables()


def test_a_comment_only_up_sql_is_refused_before_anything_runs(db: ScratchDatabase,
                                                               migrations: Path, cli) -> None:
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    write_version(migrations, "002_empty", "/* only */ -- comments\n/* here */ ;\n")
    result = cli("migrate", *_args(db, migrations))
    assert result.code == 2
    assert f"002_empty/up.sql: holds no SQL statement for {db.engine}" in result.err
    assert "t1" not in db.tables() and "schema_migrations" not in db.tables()


def test_a_mysqldump_preamble_runs_on_mysql_and_is_a_comment_elsewhere(
        db: ScratchDatabase, migrations: Path, cli) -> None:
    """``/*!40101 ... */`` is executed by MySQL and MariaDB, and a comment elsewhere."""
    preamble = ("/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n"
                "/*!40101 SET NAMES utf8mb4 */;\n")
    write_version(migrations, "001_dump", preamble + "CREATE TABLE dumped (id INT);\n")
    write_version(migrations, "002_only_preamble", preamble)
    result = cli("migrate", *_args(db, migrations))
    if db.engine == "mysql":
        assert result.code == 0, result.err
        assert "dumped" in db.tables() and db.versions() == ["001", "002"]
    else:
        assert result.code == 2
        assert "002_only_preamble/up.sql: holds no SQL statement" in result.err
        assert "001_dump" not in result.err


def test_verify_fails_where_nothing_is_applied_unless_allowed(db: ScratchDatabase,
                                                              migrations: Path, cli) -> None:
    """A wrong database or --table must not pass CI by verifying nothing."""
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    fresh = cli("verify", *_args(db, migrations))
    assert fresh.code == 1
    assert "no applied version is recorded: the tracking table schema_migrations is " \
        "missing or empty" in fresh.out and "--allow-empty" in fresh.out
    assert cli("verify", *_args(db, migrations, "--allow-empty")).code == 0
    assert cli("migrate", *_args(db, migrations)).code == 0
    assert cli("verify", *_args(db, migrations)).code == 0
    typo = cli("verify", *_args(db, migrations, "--table", "schema_migration", "--json"))
    assert typo.code == 1
    assert json.loads(typo.out)["nothing_applied"].startswith("no applied version")


def test_a_migration_that_drops_the_tracking_table_is_named(db: ScratchDatabase,
                                                            migrations: Path, cli) -> None:
    """Real projects drop an older tool's schema_migrations; say which version did it."""
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    write_version(migrations, "002_drop_old_tool", "DROP TABLE schema_migrations;\n")
    result = cli("migrate", *_args(db, migrations))
    assert result.code == 1
    assert "002_drop_old_tool/up.sql: version 002 ran, but its row in the tracking table " \
        "schema_migrations could not be written" in result.err
    assert "--table" in result.err and "Traceback" not in result.err
    if db.engine == "mysql":
        assert "commits DDL implicitly" in result.err
    else:
        assert "nothing of it stayed" in result.err
        assert db.versions() == ["001"]


def test_a_real_run_as_json_succeeding_and_failing(db: ScratchDatabase, migrations: Path,
                                                   cli) -> None:
    """Deploy tooling reads one JSON document; the exit code is the same as without it."""
    write_version(migrations, "001_one",
                  "CREATE TABLE t1 (a INT);\nINSERT INTO t1 VALUES (1);\n", "DROP TABLE t1;\n")
    applied = cli("migrate", *_args(db, migrations, "--json"))
    assert applied.code == 0, applied.err
    document = json.loads(applied.out)
    assert document["ok"] is True and document["dry_run"] is False
    [step] = document["steps"]
    assert (step["version"], step["direction"], step["outcome"], step["statements"]) == (
        "001", "up", "applied", 2)
    write_version(migrations, "002_bad",
                  "INSERT INTO t1 VALUES (2);\nINSERT INTO nope VALUES (1);\n")
    failed = cli("migrate", *_args(db, migrations, "--json"))
    assert failed.code == 1
    assert "statement failed applying version 002" in failed.err  # still on stderr
    document = json.loads(failed.out)
    assert document["ok"] is False and document["steps"] == []
    error = document["error"]
    assert (error["version"], error["line"], error["exit_code"]) == ("002", 2, 1)
    assert error["file"].endswith("002_bad/up.sql") and error["type"] == "StatementError"
    back = cli("rollback", *_args(db, migrations, "--json"))
    assert back.code == 0, back.err
    assert json.loads(back.out)["steps"][0]["outcome"] == "rolled back"
