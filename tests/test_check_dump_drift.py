"""check, dump and verify --drift (README: Proving down.sql, Schema dump, Drift) on
each engine: correct downs pass; each usual mistake is named; the target database is
never touched; a dump loads into an empty database with the engine's own client."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import ScratchDatabase, write_version

BASE_UP = ("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(40), "
           "price INTEGER NOT NULL DEFAULT 0, qty INTEGER NOT NULL DEFAULT 0, "
           "CHECK (price >= 0));\n")
BASE = ("001_items", BASE_UP, "DROP TABLE items;\n")

# A statement that changes nothing, for a down.sql that "forgets" its work.
NOTHING = "UPDATE items SET name = name WHERE id < 0;\n"

TRIGGER = {
    "sqlite": ("CREATE TRIGGER items_touch AFTER INSERT ON items BEGIN "
               "UPDATE items SET name = name WHERE id = NEW.id; END;\n"),
    "postgresql": ("CREATE FUNCTION items_touch() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                   "BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$;\n"
                   "CREATE TRIGGER items_touch BEFORE INSERT ON items FOR EACH ROW "
                   "EXECUTE FUNCTION items_touch();\n"),
    "mysql": ("CREATE TRIGGER items_touch BEFORE INSERT ON items FOR EACH ROW "
              "SET NEW.name = UPPER(NEW.name);\n"),
}
FUNCTION = {
    "postgresql": ("CREATE FUNCTION item_count() RETURNS bigint LANGUAGE sql AS "
                   "$$ SELECT count(*) FROM items $$;\n"),
    "mysql": ("CREATE FUNCTION item_count() RETURNS INT READS SQL DATA "
              "RETURN (SELECT COUNT(*) FROM items);\n"),
}
REBUILD_WITHOUT_CHECK = (
    "CREATE TABLE items_new (id INTEGER PRIMARY KEY, name VARCHAR(40), "
    "price INTEGER NOT NULL DEFAULT 0, qty INTEGER NOT NULL DEFAULT 0);\n"
    "INSERT INTO items_new (id, name, price, qty) SELECT id, name, price, qty FROM items;\n"
    "DROP TABLE items;\n"
    "ALTER TABLE items_new RENAME TO items;\n")


def _check(cli: Any, db: ScratchDatabase, migrations: Path, *extra: str
           ) -> tuple[int, dict[str, Any]]:
    result = cli("check", "--database", db.url, "--migrations", str(migrations), "--json",
                 *extra)
    return result.code, json.loads(result.out)


def _messages(document: dict[str, Any]) -> list[str]:
    return [difference["message"] for version in document["versions"]
            for difference in version["differences"]]


def _folder(tmp_path: Path, *versions: tuple[str, str, str], **header: Any) -> Path:
    migrations = tmp_path / "migrations"
    for name, up, down in (BASE, *versions):
        write_version(migrations, name, up, down, **header)
    return migrations


def test_correct_downs_pass_and_the_target_is_never_touched(cli: Any, db: ScratchDatabase,
                                                             tmp_path: Path) -> None:
    versions = [("002_index", "CREATE INDEX idx_items_name ON items (name);\n",
                 "DROP INDEX idx_items_name" + (" ON items" if db.engine == "mysql" else "")
                 + ";\n"),
                ("003_view", "CREATE VIEW cheap_items AS SELECT id, name FROM items "
                 "WHERE price < 10;\n", "DROP VIEW cheap_items;\n"),
                ("004_column", "ALTER TABLE items ADD COLUMN note VARCHAR(20);\n",
                 "ALTER TABLE items DROP COLUMN note;\n"),
                ("005_trigger", TRIGGER[db.engine],
                 "DROP TRIGGER items_touch" + (" ON items;\nDROP FUNCTION items_touch();\n"
                                               if db.engine == "postgresql" else ";\n"))]
    if db.engine in FUNCTION:
        versions.append(("006_function", FUNCTION[db.engine], "DROP FUNCTION item_count;\n"))
    if db.engine == "postgresql":
        versions.append(("007_enum", "CREATE TYPE mood AS ENUM ('sad', 'ok');\n",
                         "DROP TYPE mood;\n"))
    migrations = _folder(tmp_path, *versions)
    scratch_before = _scratch_databases(db)
    code, document = _check(cli, db, migrations)
    assert code == 0, document
    assert document["counts"] == {"ok": len(versions) + 1}
    assert db.tables() == set()  # the target database: not even the tracking table
    if db.engine == "sqlite":
        assert not Path(db.url.removeprefix("sqlite:///")).stat().st_size
    assert _scratch_databases(db) == scratch_before  # the scratch database was dropped


def _scratch_databases(db: ScratchDatabase) -> set[str]:
    """The scratch databases on the server (another run's may be there too)."""
    if db.engine == "sqlite":
        return set()
    query = "SELECT datname FROM pg_database" if db.engine == "postgresql" \
        else "SHOW DATABASES"
    return {row[0] for row in db.rows(query) if row[0].startswith("sqlmig_scratch_")}


def _mistake(db: ScratchDatabase, mistake: str) -> tuple[str, str, list[str]]:
    """up.sql, a down.sql that makes the mistake, and the words check must say."""
    return {
        "index": ("CREATE INDEX idx_items_name ON items (name);\n", NOTHING,
                  ["002: down.sql leaves index idx_items_name on items"]),
        "view": ("CREATE VIEW cheap_items AS SELECT id FROM items;\n", NOTHING,
                 ["002: down.sql leaves view cheap_items"]),
        "trigger": (TRIGGER[db.engine], NOTHING,
                    ["002: down.sql leaves trigger items_touch on items"]),
        "function": (FUNCTION.get(db.engine, ""), NOTHING,
                     ["002: down.sql leaves function item_count"]),
        "enum": ("CREATE TYPE mood AS ENUM ('sad', 'ok');\n", NOTHING,
                 ["002: down.sql leaves type mood"]),
        "column": ("ALTER TABLE items DROP COLUMN qty;\n",
                   "ALTER TABLE items ADD COLUMN qty VARCHAR(10);\n",
                   ["002: down.sql leaves column items.qty changed: ", "nullable yes "
                    "(before up.sql: no)", "(before up.sql: 0)"]),
        "constraint": ("ALTER TABLE items ADD COLUMN note VARCHAR(20);\n",
                       REBUILD_WITHOUT_CHECK, ["002: down.sql drops constraint"]),
        "already exists": ("CREATE TABLE tags (id INTEGER PRIMARY KEY);\n", NOTHING,
                           ["002: down.sql leaves table tags",
                            "002: up.sql fails when run again after down.sql", "tags",
                            "already exists"]),
    }[mistake]


def _assert_named(cli: Any, db: ScratchDatabase, tmp_path: Path, mistake: str) -> None:
    up, down, expected = _mistake(db, mistake)
    migrations = _folder(tmp_path, ("002_mistake", up, down))
    text = cli("check", "--database", db.url, "--migrations", str(migrations))
    assert text.code == 1, text.out + text.err
    for words in expected:
        assert words in text.out, (words, text.out)
    code, document = _check(cli, db, migrations)
    assert code == 1 and not document["ok"]
    assert document["versions"][0]["outcome"] == "ok"  # 001 is fine
    assert document["versions"][1]["outcome"] in ("differs", "failed")


@pytest.mark.parametrize("mistake", ["index", "view", "trigger", "column", "constraint",
                                     "already exists"])
def test_each_usual_mistake_is_named(cli: Any, db: ScratchDatabase, tmp_path: Path,
                                     mistake: str) -> None:
    _assert_named(cli, db, tmp_path, mistake)


@pytest.mark.parametrize("engine", ["postgres_db", "mysql_db"])
def test_a_function_left_behind_is_named(cli: Any, tmp_path: Path, engine: str,
                                         request: pytest.FixtureRequest) -> None:
    """SQLite has no stored functions."""
    _assert_named(cli, request.getfixturevalue(engine), tmp_path, "function")


def test_an_enum_left_behind_is_named(cli: Any, tmp_path: Path,
                                      postgres_db: ScratchDatabase) -> None:
    """PostgreSQL's enum types (MySQL's ENUM is a column type, SQLite has none)."""
    _assert_named(cli, postgres_db, tmp_path, "enum")


def test_noop_and_irreversible_are_applied_and_named_not_checked(cli: Any, tmp_path: Path,
                                                                 sqlite_db: ScratchDatabase
                                                                 ) -> None:
    migrations = _folder(tmp_path)
    write_version(migrations, "002_data", "INSERT INTO items (id, price) VALUES (1, 2);\n",
                  "", rollback="noop")
    write_version(migrations, "003_gone", "ALTER TABLE items ADD COLUMN note TEXT;\n",
                  "-- no way back\n", rollback="irreversible")
    write_version(migrations, "004_index", "CREATE INDEX i ON items (note);\n",
                  "DROP INDEX i;\n")
    code, document = _check(cli, sqlite_db, migrations)
    assert code == 0
    outcomes = {version["version"]: (version["outcome"], version["note"])
                for version in document["versions"]}
    assert outcomes["002"] == ("not checked", "rollback: noop; applied, not checked")
    assert outcomes["003"][0] == "not checked"
    assert outcomes["004"] == ("ok", None)  # checked on top of the unchecked ones


def test_a_given_scratch_database_must_be_empty(cli: Any, tmp_path: Path,
                                                sqlite_db: ScratchDatabase) -> None:
    migrations = _folder(tmp_path)
    scratch = tmp_path / "proving_ground.db"  # (the fixture's database is scratch.db)
    used = cli("check", "--database", sqlite_db.url, "--migrations", str(migrations),
               "--scratch", f"sqlite:///{scratch}")
    assert used.code == 0, used.err
    assert "001" in used.out and str(scratch) in used.out
    again = cli("check", "--database", sqlite_db.url, "--migrations", str(migrations),
                "--scratch", f"sqlite:///{scratch}")
    assert again.code == 2
    assert "is not empty" in again.err


# --- dump ---------------------------------------------------------------------------------


def _rich_folder(tmp_path: Path, engine: str) -> Path:
    versions = [("002_index", "CREATE INDEX idx_items_name ON items (name);\n", NOTHING),
                ("003_view", "CREATE VIEW cheap_items AS SELECT id, name FROM items;\n",
                 "DROP VIEW cheap_items;\n"),
                ("004_trigger", TRIGGER[engine], NOTHING),
                ("005_notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, "
                 "item_id INTEGER REFERENCES items (id));\n", "DROP TABLE notes;\n")]
    if engine in FUNCTION:
        versions.append(("006_function", FUNCTION[engine], NOTHING))
    return _folder(tmp_path, *versions)


def _empty_twin(db: ScratchDatabase, tmp_path: Path, request: pytest.FixtureRequest
                ) -> ScratchDatabase:
    """A second empty database on the same engine, dropped after the test."""
    import uuid

    from conftest import MYSQL_URL, POSTGRES_URL, _server_url

    if db.engine == "sqlite":
        return ScratchDatabase("sqlite", f"sqlite:///{tmp_path / 'twin.db'}")
    name = f"sqlmig_twin_{uuid.uuid4().hex[:10]}"
    server = request.getfixturevalue("postgres_server" if db.engine == "postgresql"
                                     else "mysql_server")
    admin = server.admin()
    if db.engine == "postgresql":
        admin.execute(f'CREATE DATABASE "{name}"')
        request.addfinalizer(lambda: admin.execute(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return ScratchDatabase("postgresql", _server_url(POSTGRES_URL, name))
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")

    def drop() -> None:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")

    request.addfinalizer(drop)
    return ScratchDatabase("mysql", _server_url(MYSQL_URL, name))


def _load(engine: str, url: str, path: Path) -> None:
    """Load a dump with the engine's own client."""
    if engine == "sqlite":
        command = ["sqlite3", url.removeprefix("sqlite:///")]
    elif engine == "postgresql":
        command = ["psql", "-q", "-v", "ON_ERROR_STOP=1", url]
    else:
        name = url.rsplit("/", 1)[1]
        command = ["mariadb", "-h127.0.0.1", "-uroot", name]
    with path.open("rb") as stream:
        done = subprocess.run(command, stdin=stream, capture_output=True, check=False,
                              timeout=60, env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
    assert done.returncode == 0, done.stderr.decode()


def test_dump_is_deterministic_and_loads_into_an_empty_database(
        cli: Any, db: ScratchDatabase, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    migrations = _rich_folder(tmp_path, db.engine)
    description = migrations / "005_notes" / "migration.yaml"
    description.write_text("description: O'Brien's \\ notes\n")
    base = ["--database", db.url, "--migrations", str(migrations)]
    assert cli("migrate", *base).code == 0
    first, second = cli("dump", *base), cli("dump", *base)
    assert first.code == 0, first.err
    assert first.out == second.out  # byte-identical
    assert "INSERT INTO" in first.out and "O''Brien" in first.out
    if db.engine != "sqlite":
        assert db.url.rsplit("/", 1)[1] not in first.out  # no database name
    schema = tmp_path / "schema.sql"
    assert cli("dump", *base, "--out", str(schema)).code == 0
    assert schema.read_text() == first.out

    # An empty database of the same engine, loaded with the engine's own client.
    other = _empty_twin(db, tmp_path, request)
    _load(db.engine, other.url, schema)
    loaded = ["--database", other.url, "--migrations", str(migrations)]
    assert cli("dump", *loaded).out == first.out  # the same catalog, the same rows
    status = [[{**entry, "applied_at": None}
               for entry in json.loads(cli("status", *args, "--json").out)["migrations"]]
              for args in (base, loaded)]
    assert status[0] == status[1]  # the same states, descriptions and checksums
    assert "INSERT INTO" in first.out and "(version, description, checksum)" in first.out
    assert cli("verify", "--drift", *loaded).code == 0


# --- drift --------------------------------------------------------------------------------


def test_drift_finds_a_hand_made_index_and_column(cli: Any, db: ScratchDatabase,
                                                  tmp_path: Path) -> None:
    migrations = _rich_folder(tmp_path, db.engine)
    base = ["--database", db.url, "--migrations", str(migrations)]
    assert cli("migrate", *base).code == 0
    clean = cli("verify", "--drift", *base)
    assert clean.code == 0, clean.out + clean.err
    assert "drift: none" in clean.out
    for sql in ("CREATE INDEX by_hand ON items (price)",
                "ALTER TABLE notes ADD COLUMN added_by_hand INTEGER"):
        cursor = db.admin.cursor()
        cursor.execute(sql)
        cursor.close()
    drift = cli("verify", "--drift", *base)
    assert drift.code == 1
    assert "made by hand (no migration creates it): index by_hand on items" in drift.out
    assert "made by hand (no migration creates it): column notes.added_by_hand" in drift.out
    document = json.loads(cli("verify", "--drift", "--json", *base).out)
    assert not document["ok"]
    assert {(d["kind"], d["name"]) for d in document["drift"]["differences"]} == \
        {("index", "by_hand"), ("column", "added_by_hand")}
    assert document["drift"]["built"] == [v["version"] for v in
                                          json.loads(cli("status", "--json", *base).out)
                                          ["migrations"]]


def test_a_failing_down_is_named_and_the_next_versions_still_checked(
        cli: Any, db: ScratchDatabase, tmp_path: Path) -> None:
    migrations = _folder(tmp_path,
                         ("002_tags", "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n",
                          "SELECT nope FROM nowhere;\nDROP TABLE tags;\n"),
                         ("003_index", "CREATE INDEX idx_items_name ON items (name);\n",
                          NOTHING))
    code, document = _check(cli, db, migrations)
    assert code == 1
    outcomes = [(version["version"], version["outcome"]) for version in document["versions"]]
    # 003 was reached: its index left behind is named (and its second up.sql fails).
    assert outcomes == [("001", "ok"), ("002", "failed"), ("003", "failed")]
    assert document["versions"][2]["differences"][0]["message"] == \
        "down.sql leaves index idx_items_name on items"
    failed = document["versions"][1]
    assert failed["differences"][0]["message"].startswith("down.sql fails: ")
    assert "002_tags/down.sql:1" in failed["differences"][0]["message"]
    assert "rolled back" in failed["note"]


def test_scratch_must_be_another_database_of_the_same_engine(
        cli: Any, db: ScratchDatabase, tmp_path: Path) -> None:
    migrations = _folder(tmp_path)
    base = ["--database", db.url, "--migrations", str(migrations)]
    itself = cli("check", *base, "--scratch", db.url)
    assert itself.code == 2 and "that is the database itself" in itself.err
    if db.engine == "postgresql":  # a schema of the same database is still the database
        schema = cli("check", *base, "--scratch", f"{db.url}?options=-csearch_path%3Dother")
        assert schema.code == 2 and "that is the database itself" in schema.err
    other = "postgresql://postgres@127.0.0.1/x" if db.engine != "postgresql" \
        else f"sqlite:///{tmp_path / 'other.db'}"
    engine = cli("check", *base, "--scratch", other)
    assert engine.code == 2 and "give one of the same engine" in engine.err
    assert db.tables() == set()
    drift = cli("verify", *base, "--scratch", f"sqlite:///{tmp_path / 'x.db'}")
    assert drift.code == 2 and "--scratch only applies with --drift" in drift.err


def test_drift_that_cannot_build_says_so(cli: Any, sqlite_db: ScratchDatabase,
                                         tmp_path: Path) -> None:
    """A database adopted from tables made before its migrations (Sibila's tables()):
    the applied versions do not build an empty database; that is said, not blamed on
    this database."""
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_tags", "ALTER TABLE legacy ADD COLUMN tag TEXT;\n",
                  "ALTER TABLE legacy DROP COLUMN tag;\n")
    sqlite_db.admin.execute("CREATE TABLE legacy (id INTEGER PRIMARY KEY)")
    base = ["--database", sqlite_db.url, "--migrations", str(migrations)]
    assert cli("migrate", *base).code == 0
    drift = cli("verify", "--drift", "--json", *base)
    assert drift.code == 1
    document = json.loads(drift.out)["drift"]
    assert not document["ok"]
    assert "no such table: legacy" in document["build_error"]
    assert document["problems"][0].startswith("the applied versions do not build an empty "
                                              "database")


def test_dump_after_migrate_and_a_dump_that_cannot_be_written(
        cli: Any, sqlite_db: ScratchDatabase, tmp_path: Path) -> None:
    migrations = _folder(tmp_path)
    base = ["--database", sqlite_db.url, "--migrations", str(migrations)]
    nowhere = cli("migrate", *base, "--dump", str(tmp_path / "no" / "schema.sql"))
    assert nowhere.code == 2 and "not a folder that exists" in nowhere.err
    assert sqlite_db.tables() == set()  # refused before anything ran
    schema = tmp_path / "schema.sql"
    schema.write_text("old\n")
    schema.chmod(0o644)
    assert cli("migrate", *base, "--dump", str(schema)).code == 0
    assert "CREATE TABLE items" in schema.read_text()
    assert schema.stat().st_mode & 0o777 == 0o644  # its mode kept
    write_version(migrations, "002_more", "CREATE TABLE more (id INTEGER);\n",
                  "DROP TABLE more;\n")
    config = tmp_path / "dumping.yaml"
    config.write_text(f"dump: {schema}\n")
    assert cli("migrate", *base, "--config", str(config)).code == 0
    assert "CREATE TABLE more" in schema.read_text()
    assert cli("rollback", *base, "--config", str(config)).code == 0
    assert "CREATE TABLE more" not in schema.read_text()


def test_sigterm_during_check_drops_the_scratch_database(tmp_path: Path) -> None:
    """A cancelled CI job: SIGTERM interrupts check, and the scratch database goes."""
    import signal
    import sys
    import time

    from conftest import ROOT

    migrations = _folder(tmp_path, ("002_slow", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                                    "SELECT x + 1 FROM c WHERE x < 40000000) "
                                    "SELECT count(*) FROM c;\n", NOTHING))
    scratch_home = tmp_path / "tmp"
    scratch_home.mkdir()
    config = tmp_path / "empty.yaml"
    config.write_text("")
    process = subprocess.Popen(
        [sys.executable, "-m", "sibila_sqlmig", "check", "--config", str(config),
         "--migrations", str(migrations), "--database", str(tmp_path / "x.db")],
        cwd=ROOT, env={**os.environ, "TMPDIR": str(scratch_home)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not list(scratch_home.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(scratch_home.iterdir()), "check made no scratch database"
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "the scratch database was dropped" in err
    assert list(scratch_home.iterdir()) == []
    assert not (tmp_path / "x.db").exists()
