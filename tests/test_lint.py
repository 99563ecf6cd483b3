"""The lint rules (sibila_sqlmig/lint.py, docs/lint.md): each fires on its hazard, is
quiet on the safe form, and can be allowed with a reason; and each hazard is shown to
be real on the engine it is about."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from conftest import ROOT, ScratchDatabase, check_statements
from sibila_sqlmig.lint import ERROR, RULES, WARNING, Finding, lint_file
from sibila_sqlmig.splitting import split_sql

UP = "m/001_x/up.sql"


def _lint(sql: str, dialect: str = "postgresql", *, transactional: bool = True,
          has_lock_timeout: bool = True) -> list[Finding]:
    return lint_file(sql, split_sql(sql, dialect), path=UP, dialect=dialect,
                     transactional=transactional, has_lock_timeout=has_lock_timeout)


def _rules(sql: str, dialect: str = "postgresql", **options: bool) -> list[str]:
    """The rules that fire and are not allowed."""
    return [f.rule for f in _lint(sql, dialect, **options) if not f.suppressed]


class Case(NamedTuple):
    rule: str
    dialect: str
    setup: str  # statements before the one that fires
    hazard: str  # the statement that fires: one line, with its ';'
    safe: str  # a file where the rule stays quiet
    safe_transactional: bool = True


CASES = [
    Case("cannot-run-in-transaction", "postgresql", "", "CREATE INDEX CONCURRENTLY i ON t (a);",
         "CREATE INDEX CONCURRENTLY i ON t (a);", safe_transactional=False),
    Case("cannot-run-in-transaction", "sqlite", "", "VACUUM;", "VACUUM;",
         safe_transactional=False),
    Case("sqlite-foreign-keys-pragma", "sqlite", "", "PRAGMA foreign_keys = OFF;",
         "PRAGMA foreign_keys = OFF;", safe_transactional=False),
    Case("sqlite-pragma-in-transaction", "sqlite", "", "PRAGMA journal_mode = WAL;",
         "PRAGMA journal_mode = WAL;", safe_transactional=False),
    Case("sqlite-pragma-in-transaction", "sqlite", "", "PRAGMA main.synchronous = OFF;",
         "PRAGMA synchronous;\nPRAGMA legacy_alter_table = ON;"),
    Case("enum-value-used-in-transaction", "postgresql", "ALTER TYPE mood ADD VALUE 'ok';\n",
         "UPDATE t SET m = 'ok';",
         "ALTER TYPE mood ADD VALUE 'ok';\nALTER TYPE mood ADD VALUE 'fine' AFTER 'ok';\n"),
    Case("enum-value-used-in-transaction", "postgresql", "ALTER TYPE mood ADD VALUE 'ok';\n",
         "UPDATE t SET m = 'ok';", "ALTER TYPE mood ADD VALUE 'ok';\nUPDATE t SET m = 'ok';",
         safe_transactional=False),
    Case("index-without-concurrently", "postgresql", "", "CREATE INDEX i ON users (email);",
         "CREATE TABLE users (email text);\nCREATE UNIQUE INDEX i ON users (email);"),
    Case("index-without-concurrently", "postgresql", "", "REINDEX TABLE users;",
         "CREATE INDEX CONCURRENTLY i ON public.users (email);", safe_transactional=False),
    Case("constraint-without-not-valid", "postgresql", "",
         "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);",
         "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) "
         "NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT fk;"),
    Case("constraint-without-not-valid", "postgresql", "",
         "ALTER TABLE ONLY orders ADD CHECK (total >= 0);",
         'CREATE TABLE "Orders" (total int);\nALTER TABLE "Orders" ADD CHECK (total >= 0);'),
    Case("constraint-builds-index", "postgresql", "",
         "ALTER TABLE users ADD CONSTRAINT u UNIQUE (email);",
         "ALTER TABLE users ADD CONSTRAINT u UNIQUE USING INDEX users_email;"),
    Case("column-type-rewrite", "postgresql", "", "ALTER TABLE users ALTER COLUMN age TYPE bigint;",
         "ALTER TABLE users ALTER COLUMN name TYPE varchar(200), ALTER note SET DATA TYPE text;"),
    Case("set-not-null", "postgresql", "", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
         "CREATE TABLE users (email text);\nALTER TABLE users ALTER COLUMN email SET NOT NULL;"),
    Case("add-column-rewrite", "postgresql", "",
         "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();",
         "ALTER TABLE users ADD COLUMN created timestamptz NOT NULL DEFAULT now();"),
    Case("missing-lock-timeout", "postgresql", "", "ALTER TABLE users ADD COLUMN note text;",
         "SET lock_timeout = '5s';\nALTER TABLE users ADD COLUMN note text;"),
    Case("missing-lock-timeout", "mysql", "", "CREATE INDEX i ON users (email);",
         "SET SESSION lock_wait_timeout = 5;\nCREATE INDEX i ON users (email);"),
    Case("drop-table", "sqlite", "", "DROP TABLE sessions;",
         # SQLite's table rebuild: the new table takes the old one's name.
         "CREATE TABLE new_s (a INT);\nINSERT INTO new_s SELECT a FROM sessions;\n"
         "DROP TABLE sessions;\nALTER TABLE new_s RENAME TO sessions;"),
    Case("drop-column", "postgresql", "", "ALTER TABLE users DROP COLUMN legacy;",
         "ALTER TABLE users DROP CONSTRAINT users_legacy_check, ALTER a DROP DEFAULT;"),
    Case("rename", "sqlite", "", "ALTER TABLE users RENAME COLUMN name TO full_name;",
         "CREATE TABLE t (a INT);\nALTER TABLE t RENAME COLUMN a TO b;"),
    Case("rename", "mysql", "", "ALTER TABLE users CHANGE name full_name TEXT, LOCK=NONE;",
         "ALTER TABLE users CHANGE name name TEXT, LOCK=NONE;"),
    Case("mysql-ddl-with-dml", "mysql", "CREATE TABLE flags (name VARCHAR(20));\n",
         "INSERT INTO flags VALUES ('x');",
         "INSERT INTO flags VALUES ('x');\nUPDATE flags SET name = 'y';"),
    Case("mysql-alter-without-algorithm", "mysql", "", "ALTER TABLE users ADD COLUMN note TEXT;",
         "ALTER TABLE users ADD COLUMN note TEXT, ALGORITHM=INSTANT;"),
]


def _id(case: Case) -> str:
    return f"{case.rule}-{case.dialect}"


def _lock_timeout(case: Case) -> bool:
    return case.rule != "missing-lock-timeout"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_rule_fires_on_the_hazard(case: Case) -> None:
    sql = case.setup + case.hazard + "\n"
    found = [f for f in _lint(sql, case.dialect, has_lock_timeout=_lock_timeout(case))
             if f.rule == case.rule]
    assert [(f.line, f.suppressed, f.level) for f in found] == [
        (sql.count("\n"), False, RULES[case.rule].level)]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_rule_is_quiet_on_the_safe_form(case: Case) -> None:
    assert case.rule not in _rules(case.safe + "\n", case.dialect,
                                   transactional=case.safe_transactional,
                                   has_lock_timeout=_lock_timeout(case))


@pytest.mark.parametrize("where", ["line before", "end of line"])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_a_suppression_with_a_reason_allows_the_rule(case: Case, where: str) -> None:
    comment = f"-- sqlmig: allow {case.rule} because the table is small"
    sql = (f"{case.setup}{comment}\n{case.hazard}\n" if where == "line before"
           else f"{case.setup}{case.hazard} {comment}\n")
    found = _lint(sql, case.dialect, has_lock_timeout=_lock_timeout(case))
    [allowed] = [f for f in found if f.rule == case.rule]
    assert allowed.suppressed and allowed.reason == "the table is small"
    assert not {"invalid-suppression", "unused-suppression"} & {f.rule for f in found}
    assert "(allowed: the table is small)" in str(allowed)


def test_every_rule_has_a_case_and_a_level() -> None:
    covered = {case.rule for case in CASES}
    untested = set(RULES) - covered - {"transaction-control", "invalid-suppression",
                                       "unused-suppression"}
    assert not untested
    for rule in RULES.values():
        assert rule.level in (ERROR, WARNING) and rule.why and rule.fix.endswith(".")
        assert set(rule.dialects) <= {"sqlite", "postgresql", "mysql"}


def test_the_docs_list_every_rule() -> None:
    docs = (ROOT / "docs" / "lint.md").read_text(encoding="utf-8")
    for rule_id, rule in RULES.items():
        assert f"| `{rule_id}` | {rule.level} |" in docs, rule_id


# --- suppressions ------------------------------------------------------------------------

def test_a_suppression_without_a_reason_is_an_error_naming_its_line() -> None:
    sql = "SELECT 1;\n-- sqlmig: allow drop-table\nDROP TABLE t;\n"
    found = _lint(sql)
    assert [(f.rule, f.level, f.line, f.suppressed) for f in found] == [
        ("invalid-suppression", ERROR, 2, False), ("drop-table", WARNING, 3, False)]
    assert "gives no reason" in found[0].message
    [problem] = check_statements(split_sql(sql, "postgresql"), path=UP, dialect="postgresql",
                                 transactional=True, text=sql)
    assert problem.line == 2 and problem.message.endswith("[invalid-suppression]")


@pytest.mark.parametrize(("comment", "complaint"), [
    ("-- sqlmig: allow drop-tables because old", "names no rule 'drop-tables'"),
    ("-- sqlmig: allow transaction-control because I know", "cannot be allowed"),
    ("-- sqlmig: please ignore", "cannot read"),
    ("-- sqlmig: allow drop-table because", "gives no reason"),
])
def test_an_unreadable_suppression_is_an_error(comment: str, complaint: str) -> None:
    found = _lint(f"{comment}\nDROP TABLE t;\n")
    assert [(f.rule, f.line) for f in found] == [("invalid-suppression", 1), ("drop-table", 2)]
    assert complaint in found[0].message


def test_transaction_control_cannot_be_allowed() -> None:
    sql = "-- sqlmig: allow transaction-control because I know\nCOMMIT;\n"
    assert _rules(sql) == ["invalid-suppression", "transaction-control"]


def test_a_suppression_that_silences_nothing_is_a_warning() -> None:
    sql = ("-- sqlmig: allow drop-table because old\n\nDROP TABLE t;\n"  # a blank line between
           "-- sqlmig: allow rename because nobody reads it\nDROP TABLE u;\n")
    found = [(f.rule, f.line, f.level, f.suppressed) for f in _lint(sql)]
    assert found == [("unused-suppression", 1, WARNING, False), ("drop-table", 3, WARNING, False),
                     ("unused-suppression", 4, WARNING, False), ("drop-table", 5, WARNING, False)]


def test_suppressions_stack_and_list_several_rules() -> None:
    sql = ("ALTER TABLE users ADD note text;\n"
           "-- sqlmig: allow drop-column because the column was never read\n"
           "-- a plain comment between\n"
           "-- sqlmig: allow rename, column-type-rewrite because the table has 10 rows\n"
           "ALTER TABLE users DROP legacy, RENAME a TO b,\n  ALTER c TYPE int;\n")
    found = _lint(sql, has_lock_timeout=False)
    assert [(f.rule, f.line, f.suppressed) for f in found] == [
        ("missing-lock-timeout", 1, False), ("drop-column", 5, True), ("rename", 5, True),
        ("column-type-rewrite", 5, True)]


def test_a_suppression_on_a_statement_s_first_line_applies_to_it_only() -> None:
    """A statement's body is never searched: a comment there is not read at all."""
    sql = ("DROP TABLE a; -- sqlmig: allow drop-table because unused since 2019\n"
           "DROP TABLE b;\n"
           "DROP TABLE\n  c -- sqlmig: allow drop-table because not the first line\n;\n"
           "DROP TABLE -- sqlmig: allow drop-table because on the first line\n  d;\n")
    found = [(f.rule, f.line, f.suppressed) for f in _lint(sql)]
    assert found == [("drop-table", 1, True), ("drop-table", 2, False),
                     ("drop-table", 3, False), ("drop-table", 6, True)]


# --- the rules' details ----------------------------------------------------------------

@pytest.mark.parametrize(("column", "fires"), [
    ("n float DEFAULT random()", True), ("n bigint DEFAULT nextval('s')", True),
    ("n bigserial", True), ("n int GENERATED ALWAYS AS IDENTITY", True),
    ("n int GENERATED ALWAYS AS (a * 2) STORED", True),
    ("n timestamptz DEFAULT clock_timestamp()", True),
    ("n timestamptz DEFAULT now()", False), ("n int NOT NULL DEFAULT 0", False),
    ("n text DEFAULT 'random()'", False), ("n int REFERENCES other (id)", False),
])
def test_add_column_rewrite_knows_volatile_defaults(column: str, fires: bool) -> None:
    assert ("add-column-rewrite" in _rules(f"ALTER TABLE t ADD COLUMN {column};")) is fires


def test_index_rules_read_quoted_and_qualified_names() -> None:
    sql = ('CREATE TABLE app."Users" (a int);\n'
           'CREATE INDEX IF NOT EXISTS i ON ONLY "Users" USING btree (a);\n'
           "CREATE INDEX ON users (a);\n")
    assert [(f.rule, f.line) for f in _lint(sql)] == [("index-without-concurrently", 3)]


def test_missing_lock_timeout_is_reported_once_and_not_with_a_header_timeout() -> None:
    sql = "ALTER TABLE a ADD x int;\nALTER TABLE b ADD y int;\nCREATE INDEX i ON c (z);\n"
    assert _rules(sql, has_lock_timeout=False).count("missing-lock-timeout") == 1
    assert "missing-lock-timeout" not in _rules(sql, has_lock_timeout=True)
    assert "missing-lock-timeout" not in _rules(sql, "sqlite", has_lock_timeout=False)


def test_the_enum_rule_ignores_comments_on_the_type() -> None:
    sql = "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'it''s';\nCOMMENT ON TYPE mood IS 'it''s';\n"
    assert _rules(sql) == []
    assert _rules(sql + "INSERT INTO t VALUES ('it''s');\n") == [
        "enum-value-used-in-transaction"]


def test_finding_reads_as_one_line() -> None:
    [finding] = _lint("DROP TABLE t;\n")
    assert str(finding) == (f"{UP}:1: warning drop-table: {RULES['drop-table'].why}. "
                            f"{RULES['drop-table'].fix}")
    assert finding.statement == "DROP TABLE t"


def test_check_statements_refuses_unallowed_errors_only() -> None:
    sql = ("DROP TABLE t;\nBEGIN;\n"
           "-- sqlmig: allow cannot-run-in-transaction because the tool is told to\nVACUUM;\n")
    statements = split_sql(sql, "sqlite")
    [problem] = check_statements(statements, path=UP, dialect="sqlite", transactional=True,
                                 text=sql)
    assert problem.line == 2 and problem.message == (
        "'BEGIN' controls the transaction, but the file already runs in one transaction with "
        "its tracking row, and this would end it early. Remove it, or set 'transaction: "
        "false' in m/001_x/migration.yaml to run each statement on its own. "
        "[transaction-control]")
    without_text = check_statements(statements, path=Path(UP), dialect="sqlite",
                                    transactional=True)
    assert [p.line for p in without_text] == [2, 4]  # no text: no suppression is seen


def test_a_large_insert_is_read_only_at_its_head() -> None:
    """Only the gaps between statements and first lines are searched for suppressions."""
    rows = ",\n".join(f"({i}, '-- sqlmig: allow x')" for i in range(20_000))
    sql = f"CREATE TABLE d (a int, b text);\nINSERT INTO d VALUES\n{rows};\n"
    assert _lint(sql, has_lock_timeout=False) == []


# --- the hazards on the engines ---------------------------------------------------------

def _connect(db: ScratchDatabase, *, autocommit: bool = False) -> Any:
    import psycopg

    return psycopg.connect(db.url, autocommit=autocommit)


@pytest.fixture
def pg_table(postgres_db: ScratchDatabase) -> Iterator[ScratchDatabase]:
    """An existing table with rows: users(id, email, age), and orgs(id)."""
    postgres_db.admin.execute(
        "CREATE TABLE orgs (id int PRIMARY KEY); INSERT INTO orgs VALUES (1);"
        "CREATE TABLE users (id int, org int, email text, age int, name varchar(20));"
        "INSERT INTO users SELECT g, 1, 'u' || g, g, 'n' FROM generate_series(1, 100) g")
    yield postgres_db


def _blocked(db: ScratchDatabase, holding: str, other: str) -> bool:
    """Whether ``other`` (another session, lock_timeout 200 ms) waits for the locks that
    ``holding`` takes in a transaction kept open."""
    import psycopg

    holder, second = _connect(db), _connect(db, autocommit=True)
    try:
        holder.execute(holding)
        second.execute("SET lock_timeout = '200ms'")
        try:
            second.execute(other)
        except psycopg.errors.LockNotAvailable:
            return True
        return False
    finally:
        holder.rollback()
        holder.close()
        second.close()


@pytest.mark.parametrize(("holding", "rule"), [
    ("CREATE INDEX users_email ON users (email)", "index-without-concurrently"),
    ("ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org) REFERENCES orgs (id)",
     "constraint-without-not-valid"),
])
def test_postgresql_these_block_writes(pg_table: ScratchDatabase, holding: str,
                                       rule: str) -> None:
    assert rule in _rules(holding + ";")
    assert _blocked(pg_table, holding, "INSERT INTO users (id) VALUES (0)")
    assert not _blocked(pg_table, holding, "SELECT count(*) FROM users")


def test_postgresql_a_foreign_key_blocks_writes_to_the_referenced_table_too(
        pg_table: ScratchDatabase) -> None:
    holding = "ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org) REFERENCES orgs (id)"
    assert _blocked(pg_table, holding, "INSERT INTO orgs VALUES (2)")


def test_postgresql_validating_a_not_valid_constraint_does_not_block_writes(
        pg_table: ScratchDatabase) -> None:
    pg_table.admin.execute("ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org) "
                           "REFERENCES orgs (id) NOT VALID")
    assert not _blocked(pg_table, "ALTER TABLE users VALIDATE CONSTRAINT fk",
                        "INSERT INTO users (id, org) VALUES (0, 1)")


@pytest.mark.parametrize(("holding", "rule"), [
    ("ALTER TABLE users ALTER COLUMN email SET NOT NULL", "set-not-null"),
    ("ALTER TABLE users ADD CONSTRAINT u UNIQUE (id)", "constraint-builds-index"),
    ("ALTER TABLE users ALTER COLUMN age TYPE bigint", "column-type-rewrite"),
])
def test_postgresql_these_block_reads_too(pg_table: ScratchDatabase, holding: str,
                                          rule: str) -> None:
    """ACCESS EXCLUSIVE: even a SELECT waits."""
    assert rule in _rules(holding + ";")
    assert _blocked(pg_table, holding, "SELECT count(*) FROM users")


@pytest.mark.parametrize("change", [
    "ADD COLUMN d timestamptz DEFAULT now()", "ADD COLUMN d float DEFAULT random()",
    "ADD COLUMN d uuid DEFAULT gen_random_uuid()", "ADD COLUMN d bigserial",
    "ADD COLUMN d timestamptz DEFAULT clock_timestamp()", "ADD COLUMN d int DEFAULT 5",
    "ADD COLUMN d int GENERATED ALWAYS AS (age * 2) STORED",
    "ALTER COLUMN name TYPE varchar(50)", "ALTER COLUMN name TYPE text",
    "ALTER COLUMN age TYPE bigint", "ALTER COLUMN age TYPE numeric",
])
def test_postgresql_the_rewrite_rules_agree_with_the_server(pg_table: ScratchDatabase,
                                                            change: str) -> None:
    """The table's file node changes exactly when the table is rewritten."""
    def filenode() -> Any:
        return pg_table.rows("SELECT pg_relation_filenode('users')")[0][0]

    before = filenode()
    pg_table.admin.execute(f"ALTER TABLE users {change}")
    rewritten = filenode() != before
    fired = {"add-column-rewrite", "column-type-rewrite"} & set(
        _rules(f"ALTER TABLE users {change};"))
    assert bool(fired) is rewritten


def test_postgresql_refuses_a_new_enum_value_in_its_transaction(
        postgres_db: ScratchDatabase) -> None:
    import psycopg

    postgres_db.admin.execute("CREATE TYPE mood AS ENUM ('sad'); CREATE TABLE t (m mood)")
    sql = "ALTER TYPE mood ADD VALUE 'ok';\nINSERT INTO t VALUES ('ok');\n"
    assert _rules(sql) == ["enum-value-used-in-transaction"]
    session = _connect(postgres_db)
    with pytest.raises(psycopg.errors.UnsafeNewEnumValueUsage):
        for statement in split_sql(sql, "postgresql"):
            session.execute(statement.sql)
    session.rollback()
    session.execute("ALTER TYPE mood ADD VALUE 'ok'")  # alone it is valid (PostgreSQL 12+)
    session.commit()
    session.execute("INSERT INTO t VALUES ('ok')")  # and usable once committed
    session.commit()
    session.close()


def test_postgresql_ddl_without_lock_timeout_makes_queries_queue(
        pg_table: ScratchDatabase) -> None:
    """One open transaction holds the table; the DDL waits for it, and every query after
    it waits behind the DDL. With a lock timeout the DDL gives up and queries flow."""
    import psycopg

    ddl_sql = "ALTER TABLE users ADD COLUMN note text"
    assert _rules(ddl_sql + ";", has_lock_timeout=False) == ["missing-lock-timeout"]
    reader, ddl = _connect(pg_table), _connect(pg_table, autocommit=True)
    reader.execute("SELECT count(*) FROM users")  # its transaction stays open
    waiting = threading.Thread(target=ddl.execute, args=(ddl_sql,))
    waiting.start()
    _wait_for(lambda: pg_table.rows("SELECT count(*) FROM pg_stat_activity WHERE "
                                     "wait_event_type = 'Lock'")[0][0] == 1)
    queued = _connect(pg_table, autocommit=True)
    queued.execute("SET lock_timeout = '300ms'")
    with pytest.raises(psycopg.errors.LockNotAvailable):
        queued.execute("SELECT count(*) FROM users")  # queued behind the waiting DDL
    reader.rollback()
    waiting.join(10)
    reader.execute("SELECT count(*) FROM users")
    ddl.execute("SET lock_timeout = '200ms'")
    with pytest.raises(psycopg.errors.LockNotAvailable):
        ddl.execute("ALTER TABLE users ADD COLUMN other text")
    assert queued.execute("SELECT count(*) FROM users").fetchone() == (100,)
    for session in (reader, ddl, queued):
        session.close()


def _wait_for(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_mysql_ddl_commits_the_data_changes_before_it(mysql_db: ScratchDatabase) -> None:
    sql = "INSERT INTO flags VALUES ('x');\nCREATE TABLE other (a INT);\n"
    assert _rules(sql, "mysql") == ["mysql-ddl-with-dml"]
    mysql_db.rows("CREATE TABLE flags (name VARCHAR(20))")
    cursor = mysql_db.admin.cursor()
    cursor.execute("BEGIN")
    for statement in split_sql(sql, "mysql"):
        cursor.execute(statement.sql)
    cursor.execute("ROLLBACK")  # the file failed after these: nothing is rolled back
    assert mysql_db.rows("SELECT name FROM flags") == [("x",)]


def test_mysql_lock_none_refuses_what_would_copy_the_table(mysql_db: ScratchDatabase) -> None:
    import pymysql

    mysql_db.rows("CREATE TABLE users (id INT PRIMARY KEY, age INT)")
    assert "mysql-alter-without-algorithm" in _rules(
        "ALTER TABLE users MODIFY age BIGINT;", "mysql")
    with pytest.raises(pymysql.err.MySQLError, match="LOCK=NONE is not supported"):
        mysql_db.rows("ALTER TABLE users MODIFY age BIGINT, LOCK=NONE")
    mysql_db.rows("ALTER TABLE users MODIFY age BIGINT")  # without: it copies, silently
    assert "mysql-alter-without-algorithm" not in _rules(
        "ALTER TABLE users ADD note TEXT, ALGORITHM=INSTANT;", "mysql")
    mysql_db.rows("ALTER TABLE users ADD note TEXT, ALGORITHM=INSTANT")


@pytest.mark.parametrize(("pragma", "message"), [
    ("PRAGMA journal_mode = WAL", "cannot change into wal mode from within a transaction"),
    ("PRAGMA synchronous = OFF", "Safety level may not be changed inside a transaction"),
])
def test_sqlite_refuses_these_pragmas_in_a_transaction(tmp_path: Path, pragma: str,
                                                       message: str) -> None:
    assert _rules(pragma + ";", "sqlite") == ["sqlite-pragma-in-transaction"]
    connection = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    connection.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match=message):
        connection.execute(pragma)
    connection.execute("ROLLBACK")
    connection.execute(pragma)  # outside a transaction it works
    connection.close()


def test_sqlite_ignores_foreign_keys_in_a_transaction(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    connection.execute("BEGIN")
    connection.execute("PRAGMA foreign_keys = ON")
    assert connection.execute("PRAGMA foreign_keys").fetchone() == (0,)
    connection.execute("COMMIT")
    connection.close()


def test_sqlite_renames_and_drops_break_the_old_queries(tmp_path: Path) -> None:
    sql = "ALTER TABLE users RENAME COLUMN name TO full_name;\nALTER TABLE users DROP age;\n"
    assert _rules(sql, "sqlite") == ["rename", "drop-column"]
    connection = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    connection.execute("CREATE TABLE users (id INT, name TEXT, age INT)")
    old_query = "SELECT name, age FROM users"
    connection.execute(old_query)
    for statement in split_sql(sql, "sqlite"):
        connection.execute(statement.sql)
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        connection.execute(old_query)
    connection.close()


def test_the_lint_command_text_github_json_and_exit_codes(tmp_path: Path, cli) -> None:
    import json

    from conftest import write_version

    migrations = tmp_path / "migrations"
    write_version(migrations, "001_users", "CREATE TABLE users (id INT, name TEXT);\n",
                  "DROP TABLE users;\n")
    write_version(migrations, "002_index",
                  "-- sqlmig: allow drop-column because nobody reads it any more\n"
                  "ALTER TABLE users DROP COLUMN name;\nCREATE INDEX users_id ON users (id);\n",
                  "DROP INDEX users_id;\n")
    args = ("--database", "postgresql://nobody@127.0.0.1:1/none", "--migrations",
            str(migrations))  # no database is opened
    clean = cli("lint", *args)
    assert clean.code == 0, clean.err
    assert "002_index/up.sql:3: warning index-without-concurrently" in clean.out
    assert "drop-table" not in clean.out  # what a down.sql is for
    assert "1 allowed by a -- sqlmig: comment" in clean.out
    github = cli("lint", "--format", "github", *args)
    assert "::warning file=" in github.out and "title=index-without-concurrently::" in github.out
    document = json.loads(cli("lint", "--json", "2", *args).out)
    allowed = [found for found in document["findings"] if found["suppressed"]]
    assert allowed[0]["reason"] == "nobody reads it any more" and document["ok"] is True
    write_version(migrations, "003_begin", "BEGIN;\nCREATE TABLE t (a INT);\n")
    refused = cli("lint", *args)
    assert refused.code == 2 and "003_begin/up.sql:1: error transaction-control" in refused.out


def test_migrate_prints_the_warnings_of_what_it_runs(sqlite_db, tmp_path: Path, cli) -> None:
    from conftest import write_version

    migrations = tmp_path / "migrations"
    write_version(migrations, "001_users", "CREATE TABLE users (id INT, name TEXT);\n")
    write_version(migrations, "002_drop", "ALTER TABLE users DROP COLUMN name;\n")
    args = ("--database", sqlite_db.url, "--migrations", str(migrations))
    dry = cli("migrate", "--dry-run", *args)
    assert "002_drop/up.sql:1: warning drop-column" in dry.out
    result = cli("migrate", *args)
    assert result.code == 0, result.err
    assert "002_drop/up.sql:1: warning drop-column" in result.err  # said before the run


def test_migrate_warns_of_a_down_sql_that_rollback_would_refuse(sqlite_db, tmp_path: Path,
                                                                 cli) -> None:
    """The journal keeps the down.sql: say now what would refuse it at rollback time."""
    from conftest import write_version

    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n",
                  "BEGIN;\nDROP TABLE t;\nCOMMIT;\n")
    args = ("--database", sqlite_db.url, "--migrations", str(migrations))
    result = cli("migrate", *args)
    assert result.code == 0 and "001_t/down.sql:1: " in result.err
    assert "[transaction-control] (rollback would refuse this down.sql" in result.err
    assert cli("rollback", *args).code == 2


def test_the_lint_pre_commit_hook_runs_as_pre_commit_runs_it(tmp_path: Path) -> None:
    import shlex
    import subprocess
    import sys

    import yaml

    from conftest import ROOT, write_version

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    [hook] = [hook for hook in hooks if hook["id"] == "sibila-sqlmig-lint"]
    program, *words = shlex.split(hook["entry"])
    assert program == "sibila-sqlmig" and hook["pass_filenames"] is False
    command = [sys.executable, "-m", "sibila_sqlmig", *words]
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_t", "CREATE TABLE t (a INT);\n", "DROP TABLE t;\n")
    good = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stderr + good.stdout
    write_version(migrations, "002_vacuum", "VACUUM;\n")
    bad = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "002_vacuum/up.sql:1: error cannot-run-in-transaction" \
        in bad.stdout
    unknown = subprocess.run([*command, "999"], cwd=tmp_path, capture_output=True, text=True,
                             check=False)
    assert unknown.returncode == 2 and "lint 999: no such version" in unknown.stderr
