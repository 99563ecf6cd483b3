"""The PostgreSQL catalog reader, schema dump and scratch database, on the test server.

Every test builds real databases (no mocks): a rich schema is read and its objects
checked; the same SQL in two databases gives equal catalogs; the usual mistakes
(an object left behind, a column changed, a constraint lost) are differences;
the tool's own tables are left out; pg_dump's file loads with psql into an equal
database; the scratch database is always dropped.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from conftest import POSTGRES_URL
from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.backends.postgres import PostgresBackend
from sibila_sqlmig.catalog import Catalog, compare
from sibila_sqlmig.catalog.postgres import (
    RESTRICT_KEY,
    client_environment,
    conninfo,
    dump_schema,
    read_catalog,
    scratch_database,
)
from sibila_sqlmig.config import TableName, load_settings
from sibila_sqlmig.dburl import DatabaseURL
from sibila_sqlmig.errors import ConfigError, DatabaseError
from sibila_sqlmig.tablelock import ensure_lock_table

pytestmark = pytest.mark.postgres

TOOL = TableName("schema_migrations")
TOOL_TABLES = (TOOL, TOOL.journal, TOOL.lock)
TENANT_OPTIONS = "?options=-csearch_path%3Dtenant_x"

# Every kind of object the reader knows, one statement per entry.
RICH = [
    "CREATE EXTENSION citext",
    "CREATE EXTENSION btree_gist",
    "CREATE SCHEMA app",
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE DOMAIN posint AS integer NOT NULL DEFAULT 1 CONSTRAINT positive CHECK (VALUE > 0)",
    'CREATE TYPE pair AS (a integer, b text COLLATE "C")',
    "CREATE TYPE floatrange AS RANGE (subtype = float8)",
    "CREATE SEQUENCE counter START 10 INCREMENT 5",
    "CREATE TABLE users (id serial PRIMARY KEY, email citext UNIQUE NOT NULL, "
    "name text COLLATE \"C\", m mood DEFAULT 'ok', n posint, "
    "total numeric(10,2) GENERATED ALWAYS AS (n * 2) STORED, CHECK (length(name) > 0))",
    "CREATE TABLE app.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "user_id integer REFERENCES users (id) ON DELETE CASCADE, qty integer CHECK (qty > 0), "
    "created timestamptz DEFAULT now(), EXCLUDE USING gist (id WITH <>))",
    "CREATE INDEX orders_user ON app.orders (user_id DESC, (qty + 1)) WHERE qty > 1",
    "CREATE UNIQUE INDEX users_name ON users USING btree (name) INCLUDE (m)",
    "CREATE INDEX users_email_hash ON users USING hash (email)",
    "CREATE VIEW active AS SELECT id, email FROM users WHERE n > 1",
    "CREATE MATERIALIZED VIEW user_count AS SELECT count(*) AS c FROM users",
    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN NEW.name := lower(NEW.name); RETURN NEW; END $$",
    "CREATE FUNCTION add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE "
    "AS 'SELECT a + b'",
    "CREATE FUNCTION add(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE "
    "AS 'SELECT a || b'",
    "CREATE PROCEDURE app.cleanup(days integer) LANGUAGE sql AS "
    "$$ DELETE FROM app.orders WHERE created < now() - make_interval(days => days) $$",
    "CREATE AGGREGATE mysum(integer) (SFUNC = int4pl, STYPE = integer, INITCOND = '0')",
    "CREATE TRIGGER users_touch BEFORE INSERT OR UPDATE ON users FOR EACH ROW "
    "EXECUTE FUNCTION touch()",
    "CREATE TABLE events (id integer, at date NOT NULL) PARTITION BY RANGE (at)",
    "CREATE TABLE events_2024 PARTITION OF events "
    "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    "CREATE UNLOGGED TABLE cache (k text, v text) WITH (fillfactor = 70)",
    "ALTER TABLE users ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY own ON users USING (name = current_user)",
    "COMMENT ON TABLE users IS 'the users'",
]

# The same schema in another order where PostgreSQL keeps none: tables, indexes,
# sequences and functions created before or after unrelated objects.
RICH_REORDERED = [RICH[index] for index in (
    23, 7, 17, 0, 1, 21, 2, 3, 4, 5, 6, 8, 12, 11, 22, 9, 10, 13, 14, 15, 16, 18, 19, 20,
    24, 25, 26)]
assert sorted(RICH_REORDERED) == sorted(RICH)

# A small schema for the mistakes.
BASE = [
    "CREATE TABLE owners (id serial PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, "
    "qty integer DEFAULT 0 CONSTRAINT items_qty_check CHECK (qty >= 0), "
    "owner integer CONSTRAINT items_owner_fkey REFERENCES owners (id))",
    "CREATE TYPE state AS ENUM ('new', 'done')",
]


def _url(name: str, options: str = "") -> str:
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name + options


Factory = Callable[..., PostgresBackend]


@pytest.fixture
def database(postgres_server: Any, tmp_path: Path) -> Iterator[Factory]:
    """Make a fresh database with ``statements`` run in it; its backend (connected)."""
    admin = postgres_server.admin()
    made: list[tuple[str, PostgresBackend]] = []

    def make(statements: Sequence[str] = (), options: str = "") -> PostgresBackend:
        name = f"sqlmig_cat_{uuid.uuid4().hex[:12]}"
        admin.execute(f'CREATE DATABASE "{name}"')
        backend = _backend(_url(name, options), tmp_path)
        made.append((name, backend))
        for statement in statements:
            backend.execute(statement)
        return backend

    yield make
    for name, backend in made:
        backend.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _backend(url: str, tmp_path: Path) -> PostgresBackend:
    settings = load_settings(database=url, migrations=tmp_path, config=os.devnull, environ={})
    backend = backend_for(settings)
    assert isinstance(backend, PostgresBackend)
    backend.connect(create=True)
    return backend


def _get(catalog: Catalog, kind: str, name: str, table: str = "") -> dict[str, str]:
    found = catalog.objects.get((kind, table, name))
    assert found is not None, f"no {kind} {name} {table} in {sorted(catalog.objects)}"
    return dict(found.properties)


def _changes(expected: Catalog, actual: Catalog) -> list[tuple[str, str, str, str]]:
    return [(difference.change, difference.subject.kind, difference.subject.table,
             difference.subject.name) for difference in compare(expected, actual)]


def _load(url: DatabaseURL, path: Path) -> None:
    """Load a schema file with psql, stopping at the first error."""
    done = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path),
                           "--dbname", conninfo(url)], env=client_environment(url),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def _database_exists(backend: PostgresBackend, name: str) -> bool:
    return bool(backend.query("SELECT 1 FROM pg_database WHERE datname = %s", [name]))


# --- reading ------------------------------------------------------------------------------


def test_rich_schema_is_read(database: Factory) -> None:
    catalog = read_catalog(database(RICH), TOOL_TABLES)

    assert _get(catalog, "extension", "citext") == {"version": "1.6", "schema": "public"}
    assert _get(catalog, "schema", "app") == {}
    # An extension's own objects are not the schema's; nor are a range's constructors.
    names = {name for kind, _, name in catalog.objects if kind != "extension"}
    assert not {name for name in names if name.startswith(("citext", "gbt_", "floatrange("))}
    assert _get(catalog, "type", "mood") == {"kind": "enum", "labels": "sad, ok, happy"}
    assert _get(catalog, "type", "posint") == {
        "kind": "domain", "type": "integer", "nullable": "no", "default": "1",
        "constraints": "positive: CHECK ((VALUE > 0))"}
    assert _get(catalog, "type", "pair") == {"kind": "composite",
                                              "attributes": "a integer, b text collate C"}
    assert _get(catalog, "type", "floatrange") == {"kind": "range",
                                                    "subtype": "double precision"}
    assert _get(catalog, "sequence", "counter") == {
        "type": "bigint", "start": "10", "increment": "5", "min": "1",
        "max": "9223372036854775807", "cache": "1", "cycle": "no"}

    assert _get(catalog, "table", "users") == {
        "columns": "id, email, name, m, n, total", "unlogged": "no",
        "row_security": "enabled",
        "policies": "own (permissive for all to public using (name = CURRENT_USER))"}
    assert _get(catalog, "table", "cache") == {"columns": "k, v", "unlogged": "yes",
                                               "options": "fillfactor=70"}
    assert _get(catalog, "table", "events")["partitioned"] == "RANGE (at)"
    assert _get(catalog, "table", "events_2024")["partition_of"] == \
        "events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
    # The serial's sequence is part of its column, not an object of its own.
    assert _get(catalog, "column", "id", "users") == {
        "type": "integer", "nullable": "no", "default": "nextval('users_id_seq'::regclass)",
        "sequence": "integer start 1 increment 1 min 1 max 2147483647 cache 1"}
    assert ("sequence", "", "users_id_seq") not in catalog.objects
    assert _get(catalog, "column", "name", "users") == {"type": "text", "nullable": "yes",
                                                         "collation": "C"}
    assert _get(catalog, "column", "m", "users")["default"] == "'ok'::mood"
    assert _get(catalog, "column", "total", "users")["generated"] == \
        "((n)::integer * 2) stored"
    assert _get(catalog, "column", "id", "app.orders")["identity"] == "always"

    assert _get(catalog, "constraint", "orders_user_id_fkey", "app.orders") == {
        "type": "foreign key",
        "definition": "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE"}
    assert _get(catalog, "constraint", "users_name_check", "users") == {
        "type": "check", "definition": "CHECK ((length(name) > 0))"}
    assert _get(catalog, "constraint", "orders_id_excl", "app.orders")["type"] == "exclusion"
    assert _get(catalog, "constraint", "users_pkey", "users")["type"] == "primary key"
    assert _get(catalog, "index", "orders_user", "app.orders") == {
        "unique": "no", "method": "btree", "columns": "(user_id DESC, ((qty + 1)))",
        "predicate": "(qty > 1)"}
    assert _get(catalog, "index", "users_name", "users") == {
        "unique": "yes", "method": "btree", "columns": "(name) INCLUDE (m)"}
    assert _get(catalog, "index", "users_email_hash", "users")["method"] == "hash"
    # The indexes of a primary key, a unique or an exclusion constraint are the constraint.
    indexes = {name for kind, _, name in catalog.objects if kind == "index"}
    assert indexes == {"orders_user", "users_name", "users_email_hash"}

    assert "WHERE ((users.n)::integer > 1)" in _get(catalog, "view", "active")["definition"]
    assert _get(catalog, "view", "active")["materialized"] == "no"
    assert _get(catalog, "view", "user_count")["materialized"] == "yes"
    trigger = _get(catalog, "trigger", "users_touch", "users")
    assert (trigger["timing"], trigger["event"], trigger["level"], trigger["table"]) == \
        ("before", "insert or update", "row", "users")
    assert trigger["definition"].startswith("CREATE TRIGGER users_touch BEFORE INSERT OR")

    assert "SELECT a + b" in _get(catalog, "function", "add(integer, integer)")["definition"]
    assert _get(catalog, "function", "add(text, text)")["returns"] == "text"
    assert _get(catalog, "function", "touch()")["language"] == "plpgsql"
    assert _get(catalog, "procedure", "app.cleanup(integer)")["language"] == "sql"
    assert _get(catalog, "function", "mysum(integer)")["kind"] == "aggregate"


def test_the_same_sql_in_two_databases_gives_equal_catalogs(database: Factory) -> None:
    first = read_catalog(database(RICH), TOOL_TABLES)
    second = read_catalog(database(RICH), TOOL_TABLES)
    reordered = read_catalog(database(RICH_REORDERED), TOOL_TABLES)
    assert len(first) > 40
    assert compare(first, second) == []
    assert compare(first, reordered) == []


MISTAKES = {
    "index left behind": (["CREATE INDEX items_name ON items (name)"],
                          ("added", "index", "items", "items_name")),
    "view left behind": (["CREATE VIEW item_names AS SELECT name FROM items"],
                         ("added", "view", "", "item_names")),
    "function left behind": (["CREATE FUNCTION one() RETURNS integer LANGUAGE sql "
                              "AS 'SELECT 1'"], ("added", "function", "", "one()")),
    "trigger left behind": (
        ["CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS "
         "$$ BEGIN RETURN NEW; END $$",
         "CREATE TRIGGER items_stamp BEFORE UPDATE ON items FOR EACH ROW "
         "EXECUTE FUNCTION stamp()", "DROP FUNCTION stamp() CASCADE",
         "CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS "
         "$$ BEGIN RETURN NEW; END $$",
         "CREATE TRIGGER items_stamp BEFORE UPDATE ON items FOR EACH ROW "
         "EXECUTE FUNCTION stamp()"],
        ("added", "trigger", "items", "items_stamp")),
    "enum left behind": (["CREATE TYPE old_state AS ENUM ('a')"],
                         ("added", "type", "", "old_state")),
    "enum label added": (["ALTER TYPE state ADD VALUE 'late'"],
                         ("changed", "type", "", "state")),
    "sequence left behind": (["CREATE SEQUENCE numbers"],
                             ("added", "sequence", "", "numbers")),
    "column type": (["ALTER TABLE items ALTER COLUMN qty TYPE bigint"],
                    ("changed", "column", "items", "qty")),
    "nullability": (["ALTER TABLE items ALTER COLUMN name DROP NOT NULL"],
                    ("changed", "column", "items", "name")),
    "default": (["ALTER TABLE items ALTER COLUMN qty SET DEFAULT 1"],
                ("changed", "column", "items", "qty")),
    "check lost": (["ALTER TABLE items DROP CONSTRAINT items_qty_check"],
                   ("removed", "constraint", "items", "items_qty_check")),
    "foreign key lost": (["ALTER TABLE items DROP CONSTRAINT items_owner_fkey"],
                         ("removed", "constraint", "items", "items_owner_fkey")),
    "on delete changed": (["ALTER TABLE items DROP CONSTRAINT items_owner_fkey",
                           "ALTER TABLE items ADD CONSTRAINT items_owner_fkey FOREIGN KEY "
                           "(owner) REFERENCES owners (id) ON DELETE CASCADE"],
                          ("changed", "constraint", "items", "items_owner_fkey")),
    # name moves after note: the added column is the difference (compare leaves the
    # table's column list to it); an order alone is below.
    "column order": (["ALTER TABLE owners DROP COLUMN name",
                      "ALTER TABLE owners ADD COLUMN note text",
                      "ALTER TABLE owners ADD COLUMN name text NOT NULL"],
                     ("added", "column", "owners", "note")),
}


def test_the_same_columns_in_another_order_differ(database: Factory) -> None:
    before = read_catalog(database(["CREATE TABLE t (a int, b int)"]), TOOL_TABLES)
    after = read_catalog(database(["CREATE TABLE t (b int, a int)"]), TOOL_TABLES)
    assert _changes(before, after) == [("changed", "table", "", "t")]


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_usual_mistake_is_a_difference(database: Factory, mistake: str) -> None:
    statements, expected = MISTAKES[mistake]
    before = read_catalog(database(BASE), TOOL_TABLES)
    after = read_catalog(database([*BASE, *statements]), TOOL_TABLES)
    assert expected in _changes(before, after)


def test_column_changes_name_the_property(database: Factory) -> None:
    before = read_catalog(database(BASE), TOOL_TABLES)
    after = read_catalog(database([*BASE, "ALTER TABLE items ALTER COLUMN qty TYPE bigint",
                                   "ALTER TABLE items ALTER COLUMN qty SET NOT NULL"]),
                         TOOL_TABLES)
    [difference] = compare(before, after)
    assert difference.properties == (("nullable", "yes", "no"), ("type", "integer", "bigint"))


def test_an_invalid_index_differs_from_a_valid_one(database: Factory) -> None:
    valid = database([*BASE, "CREATE UNIQUE INDEX items_name ON items (name)"])
    # A failed CREATE INDEX CONCURRENTLY leaves its index behind, invalid.
    invalid = database([*BASE, "INSERT INTO items (name) VALUES ('a'), ('a')"])
    with pytest.raises(Exception, match="could not create unique index"):
        invalid.execute("CREATE UNIQUE INDEX CONCURRENTLY items_name ON items (name)")
    [difference] = compare(read_catalog(valid, TOOL_TABLES), read_catalog(invalid, TOOL_TABLES))
    assert difference.properties == (("valid", "", "no"),)


def test_add_then_drop_column_equals_a_table_built_without_it(database: Factory) -> None:
    plain = database(["CREATE TABLE t (a integer, b text, c date)"])
    churned = database(["CREATE TABLE t (a integer, x integer, b text)",
                        "ALTER TABLE t ADD COLUMN y text",
                        "ALTER TABLE t DROP COLUMN x", "ALTER TABLE t DROP COLUMN y",
                        "ALTER TABLE t ADD COLUMN c date"])
    assert compare(read_catalog(plain, TOOL_TABLES), read_catalog(churned, TOOL_TABLES)) == []


def test_the_tools_tables_are_left_out(database: Factory) -> None:
    without = database(BASE)
    with_tool = database(BASE)
    with_tool.ensure_table()
    ensure_lock_table(with_tool)
    with_tool.execute("CREATE INDEX journal_version ON schema_migrations_journal (version)")
    catalog = read_catalog(with_tool, TOOL_TABLES)
    assert not [key for key in catalog.objects
                if any("schema_migrations" in part for part in key)]
    assert compare(read_catalog(without, TOOL_TABLES), catalog) == []
    # Not excluded, they are there: the tracking table, its journal (its identity's
    # sequence part of its id column), the lock table.
    everything = read_catalog(with_tool, ())
    assert {name for kind, _, name in everything.objects if kind == "table"} >= {
        "schema_migrations", "schema_migrations_journal", "schema_migrations_lock"}
    assert "sequence" in _get(everything, "column", "id", "schema_migrations_journal")


def test_a_schema_qualified_tool_table_and_its_schema_are_left_out(database: Factory,
                                                                   tmp_path: Path) -> None:
    tool = TableName("migrations", "ops")
    plain = database(BASE)
    backend = database(BASE)
    settings = load_settings(database=_url(backend.url.database), migrations=tmp_path,
                             config=os.devnull, environ={}, table="ops.migrations")
    tool_backend = backend_for(settings)
    tool_backend.connect(create=True)
    try:
        tool_backend.ensure_table()
    finally:
        tool_backend.close()
    exclude = (tool, tool.journal, tool.lock)
    assert compare(read_catalog(plain, exclude), read_catalog(backend, exclude)) == []


def test_round_trips_do_not_grow_with_the_schema(database: Factory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def round_trips(backend: PostgresBackend) -> int:
        calls = []
        query = backend.query

        def counting(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
            calls.append(sql)
            return query(sql, params)

        monkeypatch.setattr(backend, "query", counting)
        read_catalog(backend, TOOL_TABLES)
        return len(calls)

    tables = [f"CREATE TABLE t{i} (id serial PRIMARY KEY, a integer REFERENCES "
              f"{'t' + str(i - 1) if i else 'owners'} (id))" for i in range(40)]
    assert round_trips(database(BASE)) == round_trips(database([*BASE, *tables])) <= 15


# --- a schema per tenant ------------------------------------------------------------------


TENANT = [
    "CREATE SCHEMA tenant_x",
    "CREATE SCHEMA tenant_y",
    "CREATE TABLE public.shared (id integer PRIMARY KEY)",
    "CREATE TABLE tenant_x.things (id serial PRIMARY KEY, name text NOT NULL)",
    "CREATE INDEX things_name ON tenant_x.things (name)",
    "CREATE TYPE tenant_x.colour AS ENUM ('red', 'blue')",
    "CREATE VIEW tenant_x.thing_names AS SELECT name FROM tenant_x.things",
    "CREATE TABLE tenant_y.others (id integer)",
]


def test_a_tenant_url_reads_its_schema_only(database: Factory) -> None:
    backend = database(TENANT, options=TENANT_OPTIONS)
    catalog = read_catalog(backend, TOOL_TABLES)
    assert {(kind, name) for kind, _, name in catalog.objects
            if kind in ("table", "view", "type", "index", "schema", "extension")} == {
        ("table", "things"), ("index", "things_name"), ("type", "colour"),
        ("view", "thing_names")}
    # Public: every schema, named schema.name but for public's.
    everything = read_catalog(database(TENANT), TOOL_TABLES)
    assert {name for kind, _, name in everything.objects if kind == "table"} == {
        "shared", "tenant_x.things", "tenant_y.others"}
    assert {name for kind, _, name in everything.objects if kind == "schema"} == {
        "tenant_x", "tenant_y"}


def test_a_tenant_dump_loads_into_a_scratch_database(database: Factory,
                                                     tmp_path: Path) -> None:
    backend = database(TENANT, options=TENANT_OPTIONS)
    backend.ensure_table()
    text = dump_schema(backend, (TOOL.journal, TOOL.lock))
    assert "tenant_x.things" in text and "tenant_x.schema_migrations " in text
    assert "tenant_y" not in text and "public.shared" not in text
    with scratch_database(backend) as url:
        scratch = _backend(_url(url.database, TENANT_OPTIONS), tmp_path)
        try:
            # The tenant's schema is there from the start, and the dump still loads.
            assert scratch.query("SELECT current_schema()") == [("tenant_x",)]
            assert len(read_catalog(scratch, TOOL_TABLES)) == 0
            path = tmp_path / "tenant.sql"
            path.write_text(text, encoding="utf-8")
            _load(url, path)
            assert compare(read_catalog(backend, TOOL_TABLES),
                           read_catalog(scratch, TOOL_TABLES)) == []
        finally:
            scratch.close()


# --- the dump -----------------------------------------------------------------------------


def test_dump_is_deterministic_and_loads_into_an_equal_database(database: Factory,
                                                                tmp_path: Path) -> None:
    original = database(RICH)
    original.ensure_table()
    ensure_lock_table(original)
    original.execute("INSERT INTO schema_migrations (version) VALUES ('1')")
    text = dump_schema(original, (TOOL.journal, TOOL.lock))
    assert dump_schema(original, (TOOL.journal, TOOL.lock)) == text
    twin = database(RICH)  # built by the same SQL: the same file
    twin.ensure_table()
    assert dump_schema(twin, (TOOL.journal, TOOL.lock)) == text
    assert "CREATE TABLE public.schema_migrations (" in text
    assert "schema_migrations_journal" not in text and "schema_migrations_lock" not in text
    assert "Dumped from database version" not in text and "Dumped by" not in text
    assert f"\\restrict {RESTRICT_KEY}\n" in text
    assert "INSERT INTO" not in text  # schema only

    empty = database()
    path = tmp_path / "schema.sql"
    path.write_text(text, encoding="utf-8")
    _load(empty.url, path)
    assert compare(read_catalog(original, TOOL_TABLES), read_catalog(empty, TOOL_TABLES)) == []
    assert dump_schema(empty, ()) == text  # and its own dump is the same file


def test_dump_of_two_databases_built_in_another_order_is_the_same(database: Factory) -> None:
    assert dump_schema(database(RICH), ()) == dump_schema(database(RICH_REORDERED), ())


def test_dump_needs_pg_dump_on_path(database: Factory, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    backend = database(BASE)
    major = int(backend.query("SHOW server_version_num")[0][0]) // 10000
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=f"pg_dump is not on PATH.*postgresql-client-{major}"):
        dump_schema(backend, ())


def test_dump_refuses_a_pg_dump_older_than_the_server(database: Factory, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in that answers --version as an old client does (a real 9.6 is not at hand).
    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(0o755)
    backend = database(BASE)
    major = int(backend.query("SHOW server_version_num")[0][0]) // 10000
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=f"9.6.24, older than the server.*"
                                          f"postgresql-client-{major}") as caught:
        dump_schema(backend, ())
    assert caught.value.exit_code == 2


def test_dump_passes_the_password_in_the_environment_only() -> None:
    url = DatabaseURL("postgresql", host="db", port=5433, user="me", password="s3cr'et",
                      database="app", query=(("options", "-csearch_path=tenant_x"),
                                             ("prepare_threshold", "5"),
                                             ("sslpassword", "key")))
    text = conninfo(url)
    assert text == "host='db' port='5433' user='me' dbname='app' " \
                   "options='-csearch_path=tenant_x'"
    assert client_environment(url)["PGPASSWORD"] == "s3cr'et"


# --- the scratch database -----------------------------------------------------------------


def test_scratch_database_is_created_and_dropped(database: Factory, tmp_path: Path) -> None:
    backend = database(BASE)
    with scratch_database(backend) as url:
        assert url.database.startswith("sqlmig_scratch_")
        assert (url.host, url.port, url.user, url.query) == \
            (backend.url.host, backend.url.port, backend.url.user, backend.url.query)
        assert _database_exists(backend, url.database)
        scratch = _backend(_url(url.database), tmp_path)
        try:  # empty: plpgsql only, whatever template1 holds
            assert [key for key in read_catalog(scratch, ()).objects] == \
                [("extension", "", "plpgsql")]
        finally:
            scratch.close()  # (a session left open is ended by DROP ... WITH (FORCE))
    assert not _database_exists(backend, url.database)


def test_scratch_database_is_dropped_after_an_exception(database: Factory,
                                                         tmp_path: Path) -> None:
    backend = database(BASE)
    with pytest.raises(RuntimeError, match="boom"), scratch_database(backend) as url:
        _backend(_url(url.database), tmp_path)  # left connected on purpose
        raise RuntimeError("boom")
    assert not _database_exists(backend, url.database)


def test_scratch_database_refused_says_what_to_do(database: Factory, postgres_server: Any,
                                                  tmp_path: Path) -> None:
    admin = postgres_server.admin()
    role = f"sqlmig_nocreate_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        owner = database(BASE)
        url = _url(owner.url.database).replace("://" + (owner.url.user or ""), "://" + role, 1)
        backend = _backend(url, tmp_path)
        try:
            with pytest.raises(DatabaseError, match="--scratch URL"), \
                    scratch_database(backend):
                pass
        finally:
            backend.close()
    finally:
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')

