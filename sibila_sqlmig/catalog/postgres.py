"""PostgreSQL's catalog, schema dump and scratch database.

The catalog is read from pg_catalog with one set-based query per kind of object
(a dozen round trips for the whole database, whatever its size), normalised so
that two databases built by the same SQL compare equal: no oids, column order
instead of attribute numbers (which keep a gap after DROP COLUMN), sequences
owned by a serial or identity column folded into that column. The ``pg_get_*def``
texts qualify names as the session's search_path sees them; both sides of a
comparison are read through URLs with the same options, so they agree.

Which schemas: with ``public`` as the current schema (the default) every
non-system schema; otherwise (a schema per tenant, ``?options=-csearch_path=t``)
only the schemas of the search_path. Objects in the current schema are named
bare, others ``schema.name``.

The dump is pg_dump's own (``--schema-only``), made deterministic; the scratch
database is a CREATE DATABASE on the same server, always dropped again.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..backends.postgres import search_path_schemas
from ..config import TableName
from ..dburl import DatabaseURL
from ..errors import ConfigError, DatabaseError
from . import Catalog, DbObject, database_beside, make_object

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..backends.postgres import PostgresBackend

# The key of psql's \restrict line (pg_dump 17.6/16.10/15.14/... and later write a random
# one on every run unless given one): fixed, so that two dumps are byte-identical.
RESTRICT_KEY = "sibilasqlmig"
DUMP_TIMEOUT = 600  # seconds; a schema dump of thousands of tables takes a few
LOCK_WAIT_SECONDS = 60  # pg_dump's wait for each table's ACCESS SHARE lock
_CLIENT_TIMEOUT = 30  # pg_dump --version / --help
# URL query parameters that are psycopg's, not libpq's: pg_dump would refuse them.
_NOT_LIBPQ = frozenset({"prepare_threshold"})
# ... and secrets that must not reach a command line (only PGPASSWORD has a variable).
_SECRET = frozenset({"password", "sslpassword"})

# Schemas named pg_* are reserved to the system (pg_catalog, pg_toast, pg_temp_N, ...).
_USER_SCHEMA = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"


def _not_member(catalog: str, oid: str) -> str:
    """SQL: the object is no member of an extension (CREATE EXTENSION made it)."""
    return (f"NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = '{catalog}'::regclass "
            f"AND x.objid = {oid} AND x.deptype = 'e')")


def _quote(identifier: str) -> str:
    """An identifier as SQL (and as a pg_dump pattern): double quotes, inner ones doubled."""
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    """A string literal (standard_conforming_strings, on since PostgreSQL 9.1)."""
    return "'" + text.replace("'", "''") + "'"


# --- which schemas ------------------------------------------------------------------------


class _Scope(NamedTuple):
    """The schemas a catalog or dump covers, and the tool's tables left out of it."""

    current: str | None  # current_schema(): its objects are named without a schema
    schemas: list[str]
    everything: bool  # the current schema is public: every non-system schema is read
    excluded: dict[int, tuple[str, str]]  # oid -> (schema, name) of the tool's tables

    def name(self, schema: str, name: str) -> str:
        """``name`` in the current schema, else ``schema.name``."""
        return name if schema == self.current else f"{schema}.{name}"


def _read_scope(backend: PostgresBackend, exclude: Collection[TableName]) -> _Scope:
    row = backend.query(
        "SELECT current_schema()::text, current_schemas(false)::text[], "
        f"ARRAY(SELECT n.nspname::text FROM pg_namespace n WHERE {_USER_SCHEMA} "
        f"AND {_not_member('pg_namespace', 'n.oid')} ORDER BY 1)")[0]
    current, path, every = row[0], list(row[1] or []), list(row[2] or [])
    everything = current == "public"
    schemas = every if everything else [name for name in path if name in every]
    names = [".".join(_quote(part) for part in (table.schema, table.name) if part)
             for table in exclude]
    excluded = {oid: (schema, name) for oid, schema, name in backend.query(
        "SELECT c.oid, n.nspname::text, c.relname::text FROM unnest(%s::text[]) AS t(name) "
        "JOIN pg_class c ON c.oid = to_regclass(t.name)::oid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace", [names])} if names else {}
    return _Scope(current, schemas, everything, excluded)


# --- the catalog ----------------------------------------------------------------------------


def read_catalog(backend: PostgresBackend, exclude: Collection[TableName]) -> Catalog:
    """The schema of the database the backend is connected to, normalised; the tables
    in ``exclude`` (the tool's tracking table, journal and lock table) and everything
    that belongs to them (indexes, triggers, constraints, sequences) left out."""
    scope = _read_scope(backend, exclude)
    reader = _Reader(backend, scope)
    objects: list[DbObject] = []
    objects += reader.extensions()
    objects += reader.schemas({table.schema for table in exclude if table.schema})
    objects += reader.relations()  # views; remembers every relation's name for the rest
    objects += reader.columns()
    objects += reader.tables()
    objects += reader.sequences()
    objects += reader.types()
    objects += reader.constraints()
    objects += reader.indexes()
    objects += reader.triggers()
    objects += reader.functions()
    return Catalog.of(objects)


_SEQUENCE_COLUMNS = ("format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, "
                     "s.seqmax, s.seqcache, s.seqcycle")
_TRIGGER_EVENTS = ((4, "insert"), (8, "delete"), (16, "update"), (32, "truncate"))
_TRIGGER_ENABLED = {"D": "disabled", "R": "replica only", "A": "always"}
_POLICY_COMMANDS = {"*": "all", "r": "select", "a": "insert", "w": "update", "d": "delete"}
_CONSTRAINT_TYPES = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check",
                     "x": "exclusion"}


class _Reader:
    """The queries of one catalog read; relations maps a table or view's oid to its name
    in the catalog, so that each later query keeps only what belongs to a read table."""

    def __init__(self, backend: PostgresBackend, scope: _Scope) -> None:
        self.backend = backend
        self.scope = scope
        self.relations_by_oid: dict[int, str] = {}
        self.columns_of: dict[int, list[str]] = {}  # composite types' attributes
        self.owned: dict[tuple[int, int], str] = {}  # (table oid, attnum) -> its sequence
        self.table_properties: dict[int, dict[str, object]] = {}
        self.column_order: dict[int, list[str]] = {}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql``, whose one parameter is the list of schemas read."""
        return self.backend.query(sql, [self.scope.schemas])

    def extensions(self) -> list[DbObject]:
        """Every extension (a schema per tenant: those installed in its schemas)."""
        rows = self.backend.query(
            "SELECT e.extname::text, e.extversion, n.nspname::text FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace")
        return [make_object("extension", name, "", {"version": version, "schema": schema})
                for name, version, schema in rows
                if self.scope.everything or schema in self.scope.schemas]

    def schemas(self, tool_schemas: Collection[str]) -> list[DbObject]:
        """The schemas read, but the current one and public (every database has them)
        and the tool's own schema (``--table ops.schema_migrations`` creates it)."""
        skip = {self.scope.current, "public", *tool_schemas}
        return [make_object("schema", name) for name in self.scope.schemas if name not in skip]

    def relations(self) -> list[DbObject]:
        """Views (plain, materialized); tables (ordinary, partitioned, foreign) are kept
        for tables(), once columns() has read their columns' order."""
        rows = self.query(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, "
            "c.relpersistence = 'u', c.reloptions::text[], c.relrowsecurity, "
            "c.relforcerowsecurity, "
            "CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, "
            "CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END, "
            "ARRAY(SELECT pn.nspname::text FROM pg_inherits i "
            "      JOIN pg_class pc ON pc.oid = i.inhparent "
            "      JOIN pg_namespace pn ON pn.oid = pc.relnamespace "
            "      WHERE i.inhrelid = c.oid ORDER BY i.inhseqno), "
            "ARRAY(SELECT pc.relname::text FROM pg_inherits i "
            "      JOIN pg_class pc ON pc.oid = i.inhparent "
            "      WHERE i.inhrelid = c.oid ORDER BY i.inhseqno), "
            "CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END, "
            "fs.srvname::text "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_foreign_table ft ON ft.ftrelid = c.oid "
            "LEFT JOIN pg_foreign_server fs ON fs.oid = ft.ftserver "
            "WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm') AND n.nspname = ANY(%s) "
            f"AND {_not_member('pg_class', 'c.oid')}")
        policies = self.policies()
        views = []
        for (oid, schema, name, kind, unlogged, options, security, forced, partition_key,
             bound, parent_schemas, parent_names, view, server) in rows:
            if oid in self.scope.excluded:
                continue
            table = self.scope.name(schema, name)
            self.relations_by_oid[oid] = table
            properties: dict[str, object] = {"options": sorted(options) if options else None}
            if kind in ("v", "m"):
                properties.update(definition=view, materialized=kind == "m")
                views.append(make_object("view", table, "", properties))
                continue
            parents = [self.scope.name(*pair) for pair in zip(parent_schemas, parent_names,
                                                              strict=True)]
            properties.update(
                unlogged=unlogged, partitioned=partition_key, foreign_server=server,
                row_security="forced" if forced else "enabled" if security else None,
                policies=policies.get(oid),
                partition_of=f"{parents[0]} {bound}" if bound and parents else None,
                inherits=parents if parents and not bound else None)
            self.table_properties[oid] = properties
        return views

    def tables(self) -> list[DbObject]:
        """The tables relations() found, each with its columns' names in order."""
        return [make_object("table", self.relations_by_oid[oid], "",
                            {**properties, "columns": self.column_order.get(oid, [])})
                for oid, properties in self.table_properties.items()]

    def policies(self) -> dict[int, list[str]]:
        """Each table's row security policies, as text, by table oid."""
        rows = self.query(
            "SELECT p.polrelid, p.polname::text, p.polpermissive, p.polcmd::text, "
            "ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END "
            "      FROM unnest(p.polroles) AS r ORDER BY 1), "
            "pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) "
            "FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%s) "
            "ORDER BY p.polname")
        policies: dict[int, list[str]] = {}
        for relid, name, permissive, command, roles, using, check in rows:
            text = (f"{name} ({'permissive' if permissive else 'restrictive'} for "
                    f"{_POLICY_COMMANDS.get(command, command)} to {', '.join(roles)}"
                    + (f" using {using}" if using else "")
                    + (f" with check {check}" if check else "") + ")")
            policies.setdefault(relid, []).append(text)
        return policies

    def columns(self) -> list[DbObject]:
        """Every table's columns (ordered by attnum, of which only the order is kept);
        composite types' attributes are kept for types()."""
        self.owned = self._owned_sequences()
        rows = self.query(
            "SELECT a.attrelid, c.relkind::text, a.attnum, a.attname::text, "
            "format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text, a.attgenerated::text, "
            "CASE WHEN a.attcollation <> t.typcollation THEN "
            "  CASE WHEN cn.nspname = 'pg_catalog' THEN co.collname::text "
            "  ELSE cn.nspname || '.' || co.collname END END "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum "
            "LEFT JOIN pg_collation co ON co.oid = a.attcollation "
            "LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace "
            "WHERE c.relkind IN ('r', 'p', 'f', 'c') AND n.nspname = ANY(%s) "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum")
        found = []
        for (relid, kind, number, name, type_, notnull, default, identity, generated,
             collation) in rows:
            if kind == "c":  # a composite type's attribute: part of the type
                self.columns_of.setdefault(relid, []).append(
                    f"{name} {type_}" + (f" collate {collation}" if collation else ""))
                continue
            table = self.relations_by_oid.get(relid)
            if table is None:  # an excluded table's, or an extension's
                continue
            self.column_order.setdefault(relid, []).append(name)
            found.append(make_object("column", name, table, {
                "type": type_, "nullable": not notnull, "collation": collation,
                "default": None if generated else default,
                "generated": f"{default} stored" if generated == "s" else None,
                "identity": {"a": "always", "d": "by default"}.get(identity),
                "sequence": self.owned.get((relid, number))}))
        return found

    def _owned_sequences(self) -> dict[tuple[int, int], str]:
        """The sequence each serial or identity column owns (pg_depend 'a' / 'i'), as
        text: it is part of the column, not an object of its own."""
        rows = self.query(
            f"SELECT d.refobjid, d.refobjsubid, {_SEQUENCE_COLUMNS} FROM pg_sequence s "
            "JOIN pg_class c ON c.oid = s.seqrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid "
            "AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
            "WHERE n.nspname = ANY(%s)")
        return {(relid, number): _sequence_text(type_, start, step, low, high, cache, cycle)
                for relid, number, type_, start, step, low, high, cache, cycle in rows}

    def sequences(self) -> list[DbObject]:
        """Sequences that no column owns (those are part of their column)."""
        rows = self.query(
            f"SELECT n.nspname::text, c.relname::text, {_SEQUENCE_COLUMNS} "
            "FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%s) "
            f"AND {_not_member('pg_class', 'c.oid')} AND NOT EXISTS (SELECT 1 FROM pg_depend d "
            "  WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid "
            "  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))")
        return [make_object("sequence", self.scope.name(schema, name), "", {
                    "type": type_, "start": start, "increment": step, "min": low,
                    "max": high, "cache": cache, "cycle": cycle})
                for schema, name, type_, start, step, low, high, cache, cycle in rows]

    def types(self) -> list[DbObject]:
        """Enums (labels in order), domains, composite types and ranges."""
        rows = self.query(
            "SELECT n.nspname::text, t.typname::text, t.typtype::text, t.typrelid, "
            "ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid "
            "      ORDER BY e.enumsortorder), "
            "CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END, "
            "t.typnotnull, t.typdefault, "
            "ARRAY(SELECT k.conname || ': ' || pg_get_constraintdef(k.oid) "
            "      FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c' "
            "      ORDER BY k.conname), "
            "CASE WHEN t.typtype = 'd' AND t.typcollation <> b.typcollation THEN "
            "  (SELECT co.collname::text FROM pg_collation co WHERE co.oid = t.typcollation) "
            "END, "
            "(SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid) "
            "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "LEFT JOIN pg_class tc ON tc.oid = t.typrelid "
            "LEFT JOIN pg_type b ON b.oid = t.typbasetype "
            "WHERE n.nspname = ANY(%s) "
            "AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND tc.relkind = 'c')) "
            f"AND {_not_member('pg_type', 't.oid')}")
        found = []
        for (schema, name, kind, relid, labels, base, notnull, default, checks, collation,
             subtype) in rows:
            properties: dict[str, object]
            if kind == "e":
                properties = {"kind": "enum", "labels": labels}
            elif kind == "d":
                properties = {"kind": "domain", "type": base, "nullable": not notnull,
                              "default": default, "constraints": checks or None,
                              "collation": collation}
            elif kind == "c":
                properties = {"kind": "composite", "attributes": self.columns_of.get(relid, [])}
            else:
                properties = {"kind": "range", "subtype": subtype}
            found.append(make_object("type", self.scope.name(schema, name), "", properties))
        return found

    def constraints(self) -> list[DbObject]:
        """Primary keys, unique, foreign keys, checks and exclusions of the tables read
        (NOT NULL is the column's ``nullable``)."""
        rows = self.query(
            "SELECT k.conrelid, k.conname::text, k.contype::text, pg_get_constraintdef(k.oid) "
            "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE k.contype IN ('p', 'u', 'f', 'c', 'x') AND n.nspname = ANY(%s)")
        return [make_object("constraint", name, self.relations_by_oid[relid], {
                    "type": _CONSTRAINT_TYPES[kind], "definition": definition})
                for relid, name, kind, definition in rows if relid in self.relations_by_oid]

    def indexes(self) -> list[DbObject]:
        """Indexes, but those that implement a constraint (its index is the constraint)."""
        rows = self.query(
            "SELECT i.indrelid, ic.relname::text, i.indisunique, am.amname::text, "
            "pg_get_indexdef(i.indexrelid), pg_get_expr(i.indpred, i.indrelid), i.indisvalid "
            "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
            "JOIN pg_am am ON am.oid = ic.relam JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%s) "
            # A foreign key's conindid is the referenced key's index: not its own.
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
            "  AND k.contype IN ('p', 'u', 'x'))")
        return [make_object("index", name, self.relations_by_oid[relid], {
                    "unique": unique, "method": method, "predicate": predicate,
                    "columns": _index_columns(definition, method, predicate),
                    "valid": None if valid else False})
                for relid, name, unique, method, definition, predicate, valid in rows
                if relid in self.relations_by_oid]

    def triggers(self) -> list[DbObject]:
        """Triggers the user created (not the internal ones of foreign keys)."""
        rows = self.query(
            "SELECT t.tgrelid, t.tgname::text, t.tgtype, t.tgenabled::text, "
            "pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT t.tgisinternal AND n.nspname = ANY(%s)")
        found = []
        for relid, name, bits, enabled, definition in rows:
            if relid not in self.relations_by_oid:
                continue
            timing = "instead of" if bits & 64 else "before" if bits & 2 else "after"
            events = " or ".join(event for bit, event in _TRIGGER_EVENTS if bits & bit)
            found.append(make_object("trigger", name, self.relations_by_oid[relid], {
                "table": self.relations_by_oid[relid], "timing": timing, "event": events,
                "level": "row" if bits & 1 else "statement", "definition": definition,
                "enabled": _TRIGGER_ENABLED.get(enabled)}))
        return found

    def functions(self) -> list[DbObject]:
        """Functions (aggregates and window functions too) and procedures, named
        ``name(argument types)``: PostgreSQL tells overloads apart by those."""
        rows = self.query(
            "SELECT n.nspname::text, p.proname::text, oidvectortypes(p.proargtypes), "
            "p.prokind::text, l.lanname::text, pg_get_function_result(p.oid), "
            "CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) ELSE "
            "  (SELECT concat_ws(', ', 'aggregate ' || p.proname || '(' "
            "     || pg_get_function_arguments(p.oid) || ')', "
            "     'sfunc ' || a.aggtransfn::regproc::text, "
            "     'stype ' || format_type(a.aggtranstype, NULL), "
            "     'finalfunc ' || nullif(a.aggfinalfn::oid, 0)::regproc::text, "
            "     'combinefunc ' || nullif(a.aggcombinefn::oid, 0)::regproc::text, "
            "     'initcond ' || quote_literal(a.agginitval), "
            "     'sortop ' || nullif(a.aggsortop, 0)::regoperator::text, "
            "     'kind ' || a.aggkind::text) "
            "   FROM pg_aggregate a WHERE a.aggfnoid = p.oid) END "
            "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "JOIN pg_language l ON l.oid = p.prolang WHERE n.nspname = ANY(%s) "
            f"AND {_not_member('pg_proc', 'p.oid')} "
            # A range type's constructors: CREATE TYPE made them, DROP TYPE drops them.
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
            "  AND d.objid = p.oid AND d.deptype = 'i')")
        found = []
        for schema, name, arguments, kind, language, returns, definition in rows:
            found.append(make_object(
                "procedure" if kind == "p" else "function",
                f"{self.scope.name(schema, name)}({arguments})", "",
                {"definition": definition, "language": language, "returns": returns,
                 "kind": {"a": "aggregate", "w": "window"}.get(kind)}))
        return found


def _sequence_text(type_: str, start: int, step: int, low: int, high: int, cache: int,
                   cycle: bool) -> str:
    """An owned sequence's parameters, as the column's ``sequence`` property."""
    return (f"{type_} start {start} increment {step} min {low} max {high} cache {cache}"
            + (" cycle" if cycle else ""))


def _index_columns(definition: str, method: str, predicate: str | None) -> str:
    """What pg_get_indexdef says after ``USING method``, without the WHERE clause (the
    predicate is a property of its own): ``(a, lower(b) DESC) INCLUDE (c)``."""
    marker = f" USING {method} "
    columns = definition.split(marker, 1)[1] if marker in definition else definition
    where = f" WHERE {predicate}"
    return columns[: -len(where)] if predicate and columns.endswith(where) else columns


# --- the dump ------------------------------------------------------------------------------

_VERSION_LINES = re.compile(r"^-- Dumped (from database|by pg_dump) version .*\n", re.M)
_RESTRICT_LINES = re.compile(r"^\\(un)?restrict .*\n", re.M)
# CREATE SCHEMA of a schema that may already be there: the scratch database of a tenant
# URL has its schema from the start, and the tool creates the schema of --table s.t.
_CREATE_SCHEMA = re.compile(r'^CREATE SCHEMA ("(?:[^"]|"")+"|[^\s";]+);$', re.M)


class _PgDump(NamedTuple):
    """The pg_dump on PATH: where it is, its major version, the options it has."""

    path: str
    version: str
    major: int
    restrict_key: bool
    extension: bool


def dump_schema(backend: PostgresBackend, exclude: Collection[TableName]) -> str:
    """A deterministic schema file of the database, by pg_dump --schema-only, in
    dependency order, that ``psql -v ON_ERROR_STOP=1 -f`` loads into an empty
    database. The tables in ``exclude`` (journal, lock) are left out; everything else
    (the tracking table too) is in. Byte-identical on two runs over the same database,
    and over two databases built by the same SQL: no owners, privileges or pg_dump
    version lines, a fixed \\restrict key."""
    server = int(backend.query("SELECT current_setting('server_version_num')")[0][0])
    tool = _pg_dump(server // 10000)
    scope = _read_scope(backend, exclude)
    args = [tool.path, "--schema-only", "--no-owner", "--no-privileges", "--no-password",
            # A subscription names another server, often with its password, and needs a
            # superuser to create: replication set-up, not schema.
            "--no-subscriptions", "--encoding=UTF8",
            # A migration holding a table's lock makes pg_dump wait; fail clearly instead.
            f"--lock-wait-timeout={LOCK_WAIT_SECONDS}s"]
    if tool.restrict_key:
        args.append(f"--restrict-key={RESTRICT_KEY}")
    args += [f"--exclude-table={_quote(schema)}.{_quote(name)}"
             for schema, name in sorted(scope.excluded.values())]
    if not scope.everything:  # a schema per tenant: that tenant's schemas only
        if not scope.schemas:  # pg_dump would dump everything, or refuse a pattern
            raise DatabaseError(f"The search_path of {backend.url} names no schema that "
                                "exists: there is no schema to dump.")
        args += [f"--schema={_quote(schema)}" for schema in scope.schemas]
        if tool.extension:  # --schema alone dumps no extension at all
            args += [f"--extension={_quote(name)}" for name, in backend.query(
                "SELECT e.extname::text FROM pg_extension e JOIN pg_namespace n "
                "ON n.oid = e.extnamespace WHERE n.nspname = ANY(%s) ORDER BY 1",
                [scope.schemas])]
    args += ["--dbname", conninfo(backend.url)]
    text = _run(args, backend, "pg_dump")
    text = _VERSION_LINES.sub("", text)
    if not tool.restrict_key:  # none is written then; a line of some other build goes
        text = _RESTRICT_LINES.sub("", text)
    return _CREATE_SCHEMA.sub(r"CREATE SCHEMA IF NOT EXISTS \1;", text)


def conninfo(url: DatabaseURL) -> str:
    """A libpq connection string of ``url`` for a client (pg_dump, psql), without the
    password: that goes through PGPASSWORD (client_environment)."""
    parts: dict[str, str] = {"host": url.host, "port": str(url.port or ""),
                             "user": url.user, "dbname": url.database}
    parts.update((key, value) for key, value in url.query
                 if key not in _NOT_LIBPQ and key not in _SECRET)
    return " ".join(f"{key}='{_conninfo_value(value)}'" for key, value in parts.items()
                    if value)


def _conninfo_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def client_environment(url: DatabaseURL) -> dict[str, str]:
    """The environment of a PostgreSQL client run for ``url``: the password, if any, in
    PGPASSWORD (never on its command line, where ps shows it)."""
    environ = dict(os.environ)
    if url.password:
        environ["PGPASSWORD"] = url.password
    return environ


def _run(args: Sequence[str], backend: PostgresBackend, what: str) -> str:
    """Run a client; its standard output, or DatabaseError with its own message."""
    try:
        done = subprocess.run(list(args), env=client_environment(backend.url),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=DUMP_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise DatabaseError(f"{what} did not finish within {DUMP_TIMEOUT} s dumping the "
                            f"schema of {backend.url}.") from None
    if done.returncode != 0:
        message = " ".join(done.stderr.decode("utf-8", "replace").split())
        raise DatabaseError(f"{what} failed (exit code {done.returncode}) dumping the schema "
                            f"of {backend.url}: {backend.scrub(message)}")
    return done.stdout.decode("utf-8")


def _pg_dump(server_major: int) -> _PgDump:
    """The pg_dump on PATH, if it can dump a server of this major version."""
    install = f"install postgresql-client-{server_major} (its pg_dump, first on PATH)"
    path = shutil.which("pg_dump")
    if path is None:
        raise ConfigError(f"pg_dump is not on PATH; dumping the schema needs it: {install}.")
    tool = _pg_dump_at(path)
    if tool.major < server_major:
        raise ConfigError(f"{path} is pg_dump {tool.version}, older than the server "
                          f"(PostgreSQL {server_major}), which it cannot dump: {install}.")
    return tool


@functools.lru_cache(maxsize=8)
def _pg_dump_at(path: str) -> _PgDump:
    """The version and options of the pg_dump at ``path`` (asked once per process)."""
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=_CLIENT_TIMEOUT, check=False).stdout
        usage = subprocess.run([path, "--help"], capture_output=True, text=True,
                               timeout=_CLIENT_TIMEOUT, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfigError(f"{path} (pg_dump) cannot be run: {error}") from None
    found = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)*)", version)
    if found is None:
        raise ConfigError(f"{path} does not say which pg_dump it is (--version printed "
                          f"{version.strip()!r}).")
    # 9.6 and before count as 9: older than any server this reads (12+) anyway.
    major = int(found.group(1).split(".")[0])
    return _PgDump(path, found.group(1), major, "--restrict-key" in usage,
                   "--extension" in usage)


# --- the scratch database ------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(backend: PostgresBackend) -> Iterator[DatabaseURL]:
    """A new empty database beside the backend's (CREATE DATABASE sqlmig_scratch_<hex>
    on the same server, from template0 with the backend's database's encoding and
    locale), always dropped on exit. Yields its URL: the backend's user, password,
    host, port and query options. A schema-per-tenant URL (search_path naming a schema
    other than public) gets its schemas created in it."""
    name = f"sqlmig_scratch_{secrets.token_hex(6)}"
    _create_database(backend, name)
    with database_beside(backend.url, name,
                         lambda gone: _drop_database(backend, gone)) as scratch:
        _create_search_path_schemas(backend, scratch)
        yield scratch


def _create_database(backend: PostgresBackend, name: str) -> None:
    # template0: an empty database whatever template1 holds, and never "template1 is
    # being accessed by other users".
    row = backend.query(
        "SELECT pg_encoding_to_char(d.encoding), d.datcollate::text, d.datctype::text, "
        "to_jsonb(d) FROM pg_database d WHERE d.datname = current_database()")[0]
    encoding, collate, ctype, fields = row
    sql = (f"CREATE DATABASE {_quote(name)} TEMPLATE template0 ENCODING {_literal(encoding)} "
           f"LC_COLLATE {_literal(collate)} LC_CTYPE {_literal(ctype)}")
    provider = fields.get("datlocprovider")  # 15+; the locale's column was renamed in 17
    locale = fields.get("datlocale") or fields.get("daticulocale")
    if provider == "i" and locale:
        sql += f" LOCALE_PROVIDER icu ICU_LOCALE {_literal(locale)}"
    elif provider == "b" and locale:
        sql += f" LOCALE_PROVIDER builtin BUILTIN_LOCALE {_literal(locale)}"
    try:
        backend.query(sql)
    except Exception as error:
        if not backend.is_driver_error(error):
            raise
        refused = getattr(getattr(error, "diag", None), "sqlstate", None) == "42501"
        raise DatabaseError(
            f"Cannot create a scratch database on the server of {backend.url}"
            + (" (the role may not CREATE DATABASE)" if refused else "")
            + f": {backend.error_message(error)}. Give --scratch URL naming an empty "
            "database to use instead.") from None


def _drop_database(backend: PostgresBackend, name: str) -> None:
    """DROP DATABASE, ending the sessions still connected to it; on a connection of its
    own when the backend's cannot run it (closed, or inside a transaction)."""
    if _idle(backend):
        try:
            _drop_on(backend, name)
            return
        except Exception as error:
            if not backend.is_driver_error(error):
                raise
    other = backend.sibling()
    try:
        other.connect(create=False)
        _drop_on(other, name)
    except Exception as error:
        if not backend.is_driver_error(error):
            raise
        raise DatabaseError(f"The scratch database {name} could not be dropped: "
                            f"{backend.error_message(error)}. Drop it by hand: DROP DATABASE "
                            f"{_quote(name)};") from None
    finally:
        other.close()


def _drop_on(backend: Backend, name: str) -> None:
    server = int(backend.query("SELECT current_setting('server_version_num')")[0][0])
    force = " WITH (FORCE)" if server >= 130000 else ""  # FORCE: PostgreSQL 13+
    backend.query(f"DROP DATABASE IF EXISTS {_quote(name)}{force}")


def _idle(backend: PostgresBackend) -> bool:
    """True when the backend's connection is open and outside any transaction (DROP
    DATABASE cannot run in one; a failed one refuses every statement)."""
    connection: Any = getattr(backend, "_connection", None)
    return connection is not None and not connection.closed and \
        connection.info.transaction_status.name == "IDLE"


def _create_search_path_schemas(backend: PostgresBackend, scratch: DatabaseURL) -> None:
    """Create in the scratch database the schemas its search_path names (a schema per
    tenant: the tenant's), so that the migrations find the schema they run in."""
    other = type(backend)(scratch, backend.table, backend.lock_timeout)
    try:
        other.connect(create=False)
        path = str(other.query("SHOW search_path")[0][0])
        for schema in search_path_schemas(path):
            if schema not in ("$user", "public") and not schema.startswith("pg_"):
                other.query(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
    finally:
        other.close()


__all__ = ["client_environment", "conninfo", "dump_schema", "read_catalog",
           "scratch_database"]
