"""MySQL and MariaDB: the schema as a Catalog, a schema dump, a scratch database.

``read_catalog`` reads information_schema with one query per kind of object for the
whole database, each filtered on ``TABLE_SCHEMA = DATABASE()`` (MariaDB then opens
only that database's tables): about ten queries whatever the number of tables.

``dump_schema`` is built from ``SHOW CREATE ...`` over the same connection rather than
by running ``mariadb-dump``/``mysqldump``: no client binary or second login is needed,
and the text is normalised here (no DEFINER, no AUTO_INCREMENT counter, no database
name, no version comments), which the dump tools cannot be told to do.

Choices a reader of a difference should know:

- A PRIMARY KEY or UNIQUE key is listed as a constraint (``PRIMARY`` / its name), not
  as an index: MySQL makes no difference between ``ADD UNIQUE`` and ``CREATE UNIQUE
  INDEX``. Every other key (also the one InnoDB makes for a FOREIGN KEY that has none
  it can use) is an index, so a down.sql that drops the FOREIGN KEY but leaves that
  index behind is seen.
- MySQL has no enum types: an ENUM column's labels are in its ``type``.
- A view's ``security`` (SQL SECURITY DEFINER/INVOKER) is schema (it changes whose
  privileges the view runs with, whoever created it); its DEFINER is not.
- A routine's or trigger's sql_mode is not compared (the session's, not the schema's
  text), but the dump sets it around each one, as mysqldump does.
- Events are not read (the catalog has no kind for them).
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config import TableName
from ..dburl import DatabaseURL
from ..errors import DatabaseError
from . import Catalog, DbObject, database_beside, make_object

if TYPE_CHECKING:
    from ..backends.mysql import MySQLBackend

Row = tuple[Any, ...]

# information_schema.TABLES.TABLE_TYPE values that are tables of the schema.
_TABLE_TYPES = frozenset({"BASE TABLE", "SYSTEM VERSIONED"})
_NUMERIC_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint",
                            "decimal", "numeric", "float", "double", "real"})
# SHOW CREATE TABLE's version comments (MySQL 8: /*!50100 PARTITION BY ...*/,
# /*!80016 NOT ENFORCED */; MariaDB: /*M!100100 ...*/): the text they wrap is kept.
_VERSION_COMMENT = re.compile(r"/\*M?!\d{5,6} ?(.*?) ?\*/", re.DOTALL)
_DEFINER = re.compile(r"\bDEFINER=(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|[^\s@]+)"
                      r"(?:@(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|\S+))? ")
_AUTO_INCREMENT_OPTION = re.compile(r" AUTO_INCREMENT=\d+")
_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z0-9_$]+")
# In a routine's or trigger's body: what is kept as written (strings, quoted names,
# the comments the server executes or reads: /*! */, /*M! */, /*+ hints */), and the
# runs of whitespace and comments that become one space.
_BODY_TOKEN = re.compile(
    r"""(?P<keep>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`(?:[^`]|``)*`"""
    r"""|/\*(?:!|M!|\+).*?\*/)"""
    r"""|(?:\s|/\*(?!!|M!|\+).*?\*/|--(?=\s|$)[^\n]*|\#[^\n]*)+""",
    re.DOTALL)


class _Server(NamedTuple):
    """What every query of one read needs to know about the connection."""

    database: str
    mariadb: bool
    version: tuple[int, ...]
    excluded: frozenset[str]  # names of the tool's tables, left out

    def unqualified(self, text: str) -> str:
        """``text`` without the current database's `db`. qualifier (views, defaults)."""
        return text.replace(_quote(self.database) + ".", "")


def _server(backend: MySQLBackend, exclude: Collection[TableName]) -> _Server:
    database, version = backend.query("SELECT DATABASE(), VERSION()")[0]
    if database is None:
        raise DatabaseError(f"The connection to {backend.url} has no database selected; "
                            "the URL must name one.")
    numbers = tuple(int(part) for part in re.findall(r"\d+", str(version).split("-")[0])[:3])
    excluded = frozenset(table.name for table in exclude
                         if table.schema is None or table.schema == database)
    return _Server(str(database), "mariadb" in str(version).lower(), numbers, excluded)


def _body(text: str | None) -> str | None:
    """A routine's or trigger's body without comments, whitespace runs made one space.

    The server keeps the body as the client sent it, and the ``mariadb``/``mysql``
    client drops comments unless given --comments: the same file applied by this
    tool and by the client (or a dump loaded back) must compare equal.
    """
    if text is None:
        return None
    return _BODY_TOKEN.sub(lambda match: match.group("keep") or " ", text).strip()


def _quote(identifier: str) -> str:
    """A MySQL identifier in backquotes (a backquote in it doubled)."""
    return "`" + identifier.replace("`", "``") + "`"


def _shown(identifier: str) -> str:
    """An identifier as a definition shows it: bare when plain, else quoted."""
    return identifier if _PLAIN_IDENTIFIER.fullmatch(identifier) else _quote(identifier)


# --- the catalog --------------------------------------------------------------------------


def read_catalog(backend: MySQLBackend, exclude: Collection[TableName]) -> Catalog:
    """The schema of the database the backend is connected to, normalised; the tables
    in ``exclude`` (the tool's tracking table, journal and lock table) and everything
    that belongs to them (columns, keys, indexes, triggers) left out."""
    server = _server(backend, exclude)
    relations = _relations(backend, server)
    tables = {name: row for name, row in relations.items() if row[1] in _TABLE_TYPES}
    sequences = sorted(name for name, row in relations.items() if row[1] == "SEQUENCE")
    objects: list[DbObject] = []
    objects += _columns_and_tables(backend, server, tables)
    objects += _keys_and_indexes(backend, server, tables)
    objects += _foreign_keys(backend, server, tables)
    objects += _checks(backend, server, tables)
    objects += _views(backend, server)
    objects += _triggers(backend, server)
    objects += _routines(backend)
    objects += _sequences(backend, sequences)
    return Catalog.of(objects)


def _relations(backend: MySQLBackend, server: _Server) -> dict[str, Row]:
    """Every table, view and sequence of the database but the excluded ones, by name:
    (name, type, engine, collation, create options, comment)."""
    rows = backend.query(
        "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION, CREATE_OPTIONS, "
        "TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
    return {row[0]: row for row in rows if row[0] not in server.excluded}


def _columns_and_tables(backend: MySQLBackend, server: _Server,
                        tables: dict[str, Row]) -> list[DbObject]:
    rows = backend.query(
        "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, DATA_TYPE, "
        "IS_NULLABLE, COLUMN_DEFAULT, EXTRA, COLLATION_NAME, GENERATION_EXPRESSION, "
        "COLUMN_COMMENT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()")
    by_table: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row[0] in tables:  # not a view's or a sequence's columns
            by_table[row[0]].append(row)
    partitions = _partitions(backend, tables)
    objects = []
    for name, table_row in tables.items():
        columns = sorted(by_table[name], key=lambda row: int(row[2]))
        objects.append(_table(table_row, [row[1] for row in columns], partitions.get(name)))
        objects += [_column(server, row, table_row[3]) for row in columns]
    return objects


def _table(row: Row, columns: list[str], partitioning: str | None) -> DbObject:
    name, kind, engine, collation, options, comment = row
    # "partitioned" says only that there is partitioning; `partitioning` says which.
    options = " ".join(sorted(word for word in (options or "").split()
                              if word != "partitioned"))
    return make_object("table", name, properties={
        "columns": columns, "engine": engine, "collation": collation,
        "options": options or None, "comment": comment or None,
        "system_versioning": True if kind == "SYSTEM VERSIONED" else None,
        "partitioning": partitioning})


def _column(server: _Server, row: Row, table_collation: str | None) -> DbObject:
    (table, name, _, column_type, data_type, nullable, default, extra, collation,
     expression, comment) = row
    properties: dict[str, object] = {
        "type": column_type, "nullable": nullable == "YES",
        "collation": collation if collation and collation != table_collation else None,
        "comment": comment or None}
    extra = extra or ""
    if expression:
        kind = re.search(r"\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b", extra, re.IGNORECASE)
        stored = kind is not None and kind.group(1).upper() != "VIRTUAL"
        properties["generated"] = (f"({server.unqualified(expression)}) "
                                   f"{'STORED' if stored else 'VIRTUAL'}")
    else:
        properties["default"] = _default(server, default, extra, data_type)
    properties.update(_extra(extra))
    return make_object("column", name, table, properties)


def _default(server: _Server, default: str | None, extra: str,
             data_type: str) -> str | None:
    """A column's DEFAULT as SQL text, None when there is none or it is NULL.

    MariaDB (10.2.7+) gives SQL text already: 'quoted' literals, expressions, and the
    text NULL for DEFAULT NULL (the same as no default on a nullable column). MySQL
    gives literals unquoted and marks expressions DEFAULT_GENERATED.
    """
    quoted = server.mariadb and server.version >= (10, 2, 7)
    if default is None or (quoted and default == "NULL"):
        return None
    if quoted or "DEFAULT_GENERATED" in extra.upper():
        return server.unqualified(default)
    if data_type in _NUMERIC_TYPES or re.fullmatch(r"b'[01]*'", default):
        return default
    return "'" + default.replace("'", "''") + "'"


def _extra(extra: str) -> dict[str, object]:
    """The column properties that COLUMNS.EXTRA carries."""
    properties: dict[str, object] = {}
    rest = extra
    if re.search(r"\bauto_increment\b", rest, re.IGNORECASE):
        properties["identity"] = "auto_increment"
    on_update = re.search(r"\bon update (\S+)", rest, re.IGNORECASE)
    if on_update:
        properties["on_update"] = on_update.group(1)
    if re.search(r"\bINVISIBLE\b", rest, re.IGNORECASE):
        properties["invisible"] = True
    # What is left is something this reader does not know: keep it, so that it compares.
    for known in (r"\bauto_increment\b", r"\bon update \S+", r"\bINVISIBLE\b",
                  r"\bDEFAULT_GENERATED\b", r"\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b"):
        rest = re.sub(known, "", rest, flags=re.IGNORECASE)
    if rest.strip():
        properties["extra"] = " ".join(rest.split())
    return properties


def _partitions(backend: MySQLBackend, tables: dict[str, Row]) -> dict[str, str]:
    """Each partitioned table's partitioning as one line of text. Queried only when a
    table says it is partitioned: PARTITIONS opens every table of the database."""
    if not any("partitioned" in (row[4] or "").split() for row in tables.values()):
        return {}
    rows = backend.query(
        "SELECT TABLE_NAME, PARTITION_NAME, SUBPARTITION_NAME, PARTITION_METHOD, "
        "PARTITION_EXPRESSION, SUBPARTITION_METHOD, SUBPARTITION_EXPRESSION, "
        "PARTITION_DESCRIPTION, PARTITION_ORDINAL_POSITION, SUBPARTITION_ORDINAL_POSITION "
        "FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() "
        "AND PARTITION_NAME IS NOT NULL")
    by_table: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row[0] in tables:
            by_table[row[0]].append(row)
    return {table: _partitioning(sorted(found, key=lambda row: (int(row[8]), int(row[9] or 0))))
            for table, found in by_table.items()}


def _partitioning(rows: list[Row]) -> str:
    """``RANGE (`id`): p0 (10), p1 (MAXVALUE)``, with SUBPARTITION BY where there is."""
    _, _, _, method, expression, sub_method, sub_expression, _, _, _ = rows[0]
    text = f"{method} ({expression})"
    if sub_method:
        text += f" SUBPARTITION BY {sub_method} ({sub_expression})"
    subpartitions: dict[str, list[str]] = {}  # by partition, in order
    descriptions: dict[str, str | None] = {}
    for row in rows:
        partition, subpartition, descriptions[row[1]] = row[1], row[2], row[7]
        subpartitions.setdefault(partition, [])
        if subpartition:
            subpartitions[partition].append(subpartition)
    shown = []
    for partition, subs in subpartitions.items():
        item = partition + (f" ({descriptions[partition]})" if descriptions[partition] else "")
        shown.append(item + (f" [{', '.join(subs)}]" if subs else ""))
    return f"{text}: {', '.join(shown)}"


def _keys_and_indexes(backend: MySQLBackend, server: _Server,
                      tables: dict[str, Row]) -> list[DbObject]:
    """PRIMARY KEY and UNIQUE keys as constraints, every other key as an index."""
    # Columns a server lacks are selected as constants, so that the rows line up:
    # MySQL 8.0.13+ has functional key parts (EXPRESSION) and invisible indexes,
    # MariaDB 10.6+ ignored indexes (the same idea).
    expression, hidden = "NULL", "0"
    if server.mariadb and server.version >= (10, 6):
        hidden = "IGNORED = 'YES'"
    elif not server.mariadb and server.version >= (8, 0, 13):
        expression, hidden = "EXPRESSION", "IS_VISIBLE = 'NO'"
    rows = backend.query(
        "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, COLLATION, "
        f"SUB_PART, INDEX_TYPE, INDEX_COMMENT, {expression}, {hidden} "
        "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()")
    keys: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if row[0] in tables:
            keys[(row[0], row[1])].append(row)
    return [_key(sorted(parts, key=lambda row: int(row[3]))) for parts in keys.values()]


def _key(parts: list[Row]) -> DbObject:
    table, name, non_unique, _, _, _, _, method, comment, _, hidden = parts[0]
    columns = ", ".join(_key_part(row) for row in parts)
    extra = {"comment": comment or None, "invisible": True if hidden else None}
    using = "" if method == "BTREE" else f" USING {method}"
    if name == "PRIMARY":
        return make_object("constraint", name, table, {
            "type": "primary key", "definition": f"PRIMARY KEY ({columns}){using}", **extra})
    if not int(non_unique):
        return make_object("constraint", name, table, {
            "type": "unique", "definition": f"UNIQUE ({columns}){using}", **extra})
    return make_object("index", name, table, {
        "unique": False, "columns": columns, "method": method, **extra})


def _key_part(row: Row) -> str:
    """One part of a key: ``name``, ``name(10)``, ``created DESC``, ``(expression)``."""
    column, collation, sub_part, expression = row[4], row[5], row[6], row[9]
    text = _shown(column) if column is not None else f"({expression})"
    if sub_part is not None:
        text += f"({sub_part})"
    return text + (" DESC" if collation == "D" else "")


def _foreign_keys(backend: MySQLBackend, server: _Server,
                  tables: dict[str, Row]) -> list[DbObject]:
    columns = backend.query(
        "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, ORDINAL_POSITION, "
        "REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME "
        "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() "
        "AND REFERENCED_TABLE_NAME IS NOT NULL")
    if not columns:
        return []
    rules = {(row[0], row[1]): (row[2], row[3]) for row in backend.query(
        "SELECT TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE "
        "FROM information_schema.REFERENTIAL_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = DATABASE()")}
    by_key: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in columns:
        if row[0] in tables:
            by_key[(row[0], row[1])].append(row)
    objects = []
    for (table, name), rows in by_key.items():
        rows.sort(key=lambda row: int(row[3]))
        schema, target = rows[0][4], rows[0][5]
        target = _shown(target) if schema == server.database \
            else f"{_shown(schema)}.{_shown(target)}"
        on_update, on_delete = rules.get((table, name), ("", ""))
        definition = (f"FOREIGN KEY ({', '.join(_shown(row[2]) for row in rows)}) "
                      f"REFERENCES {target} ({', '.join(_shown(row[6]) for row in rows)}) "
                      f"ON DELETE {on_delete} ON UPDATE {on_update}")
        objects.append(make_object("constraint", name, table, {
            "type": "foreign key", "definition": definition}))
    return objects


def _checks(backend: MySQLBackend, server: _Server, tables: dict[str, Row]) -> list[DbObject]:
    """CHECK constraints. MariaDB names an unnamed column check after its column, and
    its names are per table (CHECK_CONSTRAINTS has TABLE_NAME); MySQL 8.0.16+ names
    them t_chk_N, per database, and says in TABLE_CONSTRAINTS which table and whether
    it is enforced."""
    if server.mariadb:
        if server.version < (10, 2, 22):
            return []  # no CHECK_CONSTRAINTS table yet
        rows = backend.query(
            "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE, 'YES' "
            "FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()")
    elif server.version >= (8, 0, 16):
        rows = backend.query(
            "SELECT t.TABLE_NAME, t.CONSTRAINT_NAME, c.CHECK_CLAUSE, t.ENFORCED "
            "FROM information_schema.TABLE_CONSTRAINTS t "
            "JOIN information_schema.CHECK_CONSTRAINTS c "
            "ON c.CONSTRAINT_SCHEMA = t.CONSTRAINT_SCHEMA "
            "AND c.CONSTRAINT_NAME = t.CONSTRAINT_NAME "
            "WHERE t.CONSTRAINT_SCHEMA = DATABASE() AND t.CONSTRAINT_TYPE = 'CHECK'")
    else:
        return []  # MySQL before 8.0.16 parses CHECK and ignores it
    return [make_object("constraint", name, table, {
                "type": "check", "definition": f"CHECK ({server.unqualified(clause)})",
                "enforced": False if enforced == "NO" else None})
            for table, name, clause, enforced in rows if table in tables]


def _views(backend: MySQLBackend, server: _Server) -> list[DbObject]:
    """Views: the engine's text with the `db`. qualifier removed, CHECK OPTION, SQL
    SECURITY and (MariaDB) ALGORITHM; not the DEFINER."""
    algorithm = "ALGORITHM" if server.mariadb else "NULL"
    rows = backend.query(
        f"SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE, {algorithm} "
        "FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()")
    return [make_object("view", name, properties={
                "definition": server.unqualified(definition or ""),
                "check_option": None if check == "NONE" else check,
                "security": security, "algorithm": algorithm})
            for name, definition, check, security, algorithm in rows
            if name not in server.excluded]


def _triggers(backend: MySQLBackend, server: _Server) -> list[DbObject]:
    rows = backend.query(
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, "
        "ACTION_ORDER, ACTION_STATEMENT FROM information_schema.TRIGGERS "
        "WHERE TRIGGER_SCHEMA = DATABASE()")
    # `order`: where a table has two triggers for the same timing and event, which
    # fires first (FOLLOWS/PRECEDES, or the order they were created in).
    return [make_object("trigger", name, table, {
                "timing": timing, "event": event, "order": order,
                "definition": _body(statement)})
            for name, table, timing, event, order, statement in rows
            if table not in server.excluded]


def _routines(backend: MySQLBackend) -> list[DbObject]:
    """Functions and procedures (no overloading: the name alone is the key)."""
    rows = backend.query(
        "SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, ROUTINE_BODY, "
        "ROUTINE_DEFINITION, IS_DETERMINISTIC, SQL_DATA_ACCESS, SECURITY_TYPE, "
        "ROUTINE_COMMENT FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() "
        "AND ROUTINE_TYPE IN ('FUNCTION', 'PROCEDURE')")
    if not rows:
        return []
    parameters: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in backend.query(
            "SELECT SPECIFIC_NAME, ROUTINE_TYPE, ORDINAL_POSITION, PARAMETER_MODE, "
            "PARAMETER_NAME, DTD_IDENTIFIER FROM information_schema.PARAMETERS "
            "WHERE SPECIFIC_SCHEMA = DATABASE() AND ORDINAL_POSITION > 0"):
        parameters[(row[0], row[1])].append(row)
    objects = []
    for name, kind, returns, language, body, deterministic, access, security, comment in rows:
        arguments = ", ".join(
            (f"{mode} " if kind == "PROCEDURE" and mode else "") + f"{_shown(param)} {dtd}"
            for _, _, _, mode, param, dtd in sorted(parameters[(name, kind)],
                                                    key=lambda row: int(row[2])))
        objects.append(make_object(kind.lower(), name, properties={
            "arguments": arguments, "returns": returns if kind == "FUNCTION" else None,
            "definition": _body(body), "language": language,
            "deterministic": deterministic == "YES", "data_access": access,
            "security": security, "comment": comment or None}))
    return objects


def _sequences(backend: MySQLBackend, names: list[str]) -> list[DbObject]:
    """MariaDB's sequences (10.3+): their settings, read from the sequences themselves
    in one UNION query; never the next value."""
    if not names:
        return []
    rows = backend.query(" UNION ALL ".join(
        f"SELECT {_literal(name)}, start_value, increment, minimum_value, maximum_value, "
        f"cache_size, cycle_option FROM {_quote(name)}" for name in names))
    return [make_object("sequence", name, properties={
                "start": start, "increment": increment, "min": minimum, "max": maximum,
                "cache": cache, "cycle": bool(cycle)})
            for name, start, increment, minimum, maximum, cache, cycle in rows]


# --- the dump -----------------------------------------------------------------------------


def dump_schema(backend: MySQLBackend, exclude: Collection[TableName]) -> str:
    """A deterministic schema file of the database that the ``mariadb``/``mysql``
    client loads into an empty database: sequences, tables (by name, foreign key
    checks off), routines, views (each after the views it reads), triggers (in the
    order they fire). Built from SHOW CREATE, without DEFINER, AUTO_INCREMENT=N,
    version comments or the database's name. The tracking table's CREATE is
    included; the tables in ``exclude`` (journal, lock) and their triggers are not."""
    server = _server(backend, exclude)
    relations = _relations(backend, server)
    by_type: dict[str, list[str]] = defaultdict(list)
    for name, row in sorted(relations.items()):
        by_type["table" if row[1] in _TABLE_TYPES else str(row[1]).lower()].append(name)
    parts = ["SET FOREIGN_KEY_CHECKS=0;\nSET NAMES utf8mb4;\n"]
    parts += [_show_create(backend, server, "SEQUENCE", name) + ";\n"
              for name in by_type["sequence"]]
    parts += [_table_sql(_show_create(backend, server, "TABLE", name)) + ";\n"
              for name in by_type["table"]]
    routines = backend.query(
        "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
        "WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_TYPE IN ('FUNCTION', 'PROCEDURE')")
    # Routines before views: CREATE VIEW checks that the functions it calls exist,
    # while a routine's body is only resolved when it runs.
    parts += _compound(backend, sorted((str(kind), str(name)) for kind, name in routines))
    parts += [_strip_definer(_show_create(backend, server, "VIEW", name)) + ";\n"
              for name in _view_order(backend, server)]
    parts += _compound(backend, [("TRIGGER", name) for name in _trigger_order(backend, server)])
    parts.append("SET FOREIGN_KEY_CHECKS=1;\n")
    return "\n".join(parts)


def _show_create(backend: MySQLBackend, server: _Server, kind: str, name: str) -> str:
    """The text of SHOW CREATE <kind> (its place in the row differs by kind), with the
    `db`. qualifier of the current database removed (MariaDB writes it in a DEFAULT
    nextval(...); the dump must not name the database)."""
    row = _show_create_row(backend, kind, name)
    return server.unqualified(str(row[2] if kind in ("TRIGGER", "PROCEDURE", "FUNCTION")
                                  else row[1]))


def _show_create_row(backend: MySQLBackend, kind: str, name: str) -> Row:
    rows = backend.query(f"SHOW CREATE {kind} {_quote(name)}")
    if not rows or rows[0][2 if kind in ("TRIGGER", "PROCEDURE", "FUNCTION") else 1] is None:
        raise DatabaseError(f"SHOW CREATE {kind} {_quote(name)} gave no text: the user of "
                            f"{backend.url} may lack the privilege to see it.")
    return rows[0]


def _table_sql(text: str) -> str:
    """SHOW CREATE TABLE's text without the AUTO_INCREMENT=N counter (on the line of
    table options, the first that starts with ")") and without version comments."""
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if line.startswith(")"):
            lines[number] = _AUTO_INCREMENT_OPTION.sub("", line, count=1)
            break
    return _VERSION_COMMENT.sub(r"\1", "\n".join(lines))


def _strip_definer(text: str) -> str:
    """CREATE ... without its DEFINER=user@host clause (the first one, in the head)."""
    return _DEFINER.sub("", text, count=1)


def _compound(backend: MySQLBackend, objects: Sequence[tuple[str, str]]) -> list[str]:
    """Routines or triggers, each under ``DELIMITER ;;`` so that the client sends its
    body whole, and under the sql_mode it was created with (as mysqldump does; the
    session's own is put back after the last one)."""
    parts = []
    mode_now: str | None = None
    for kind, name in objects:
        row = _show_create_row(backend, kind, name)
        # The body as written (the catalog compares it so): not unqualified.
        mode, text = str(row[1]), str(row[2])
        head = ""
        if mode_now is None:
            head += "SET @sqlmig_sql_mode = @@sql_mode;\n"
        if mode != mode_now:
            head += f"SET sql_mode = {_literal(mode)};\n"
            mode_now = mode
        # ";;" on a line of its own: a body that ends in a -- comment must not hide it.
        parts.append(f"{head}DELIMITER ;;\n{_strip_definer(text)}\n;;\nDELIMITER ;\n")
    if parts:
        parts[-1] += "SET sql_mode = @sqlmig_sql_mode;\n"
    return parts


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _view_order(backend: MySQLBackend, server: _Server) -> list[str]:
    """The views in an order that loads: by name, except that a view comes after the
    views it reads (found as `db`.`name` in VIEW_DEFINITION, where MariaDB and MySQL
    qualify every table they read; MariaDB 10.x has no VIEW_TABLE_USAGE)."""
    definitions = {name: definition or "" for name, definition in backend.query(
        "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS "
        "WHERE TABLE_SCHEMA = DATABASE()") if name not in server.excluded}
    prefix = _quote(server.database) + "."
    reads = {name: sorted(other for other in definitions
                          if other != name and prefix + _quote(other) in definition)
             for name, definition in definitions.items()}
    return _dependency_order(sorted(definitions), reads.__getitem__)


def _dependency_order(names: Iterable[str], needs: Callable[[str], list[str]]) -> list[str]:
    """``names`` in their order, each moved after what it needs (a depth-first walk;
    a cycle, which views cannot have, is cut where it is found)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for other in needs(name):
            visit(other)
        order.append(name)

    for name in names:
        visit(name)
    return order


def _trigger_order(backend: MySQLBackend, server: _Server) -> list[str]:
    """Triggers by table, timing and event, and within those in the order they fire:
    created in that order, they fire in it again."""
    rows = backend.query(
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, "
        "ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
    rows = [row for row in rows if row[1] not in server.excluded]
    return [row[0] for row in sorted(rows, key=lambda row: (row[1], row[2], row[3],
                                                            int(row[4]), row[0]))]


# --- the scratch database -----------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(backend: MySQLBackend) -> Iterator[DatabaseURL]:
    """A new empty database ``sqlmig_scratch_<hex>`` on the backend's server, with its
    database's default character set and collation, made and always dropped through
    the backend's connection. Yields its URL: the backend's user, password, host, port
    and query options. Close every connection made to it before the block ends (DROP
    DATABASE waits for their locks)."""
    charset, collation = _default_collation(backend)
    name = f"sqlmig_scratch_{secrets.token_hex(8)}"
    try:
        backend.query(f"CREATE DATABASE {_quote(name)} CHARACTER SET {charset} "
                      f"COLLATE {collation}")
    except Exception as error:
        if not backend.is_driver_error(error):
            raise
        raise DatabaseError(
            f"Cannot create a scratch database on the server of {backend.url}: "
            f"{backend.error_message(error)}. Making one needs the CREATE and DROP "
            "privileges on databases named sqlmig_scratch_%; without them, give "
            "`--scratch URL` naming an empty database to use instead.") from None
    with database_beside(backend.url, name, lambda gone: _drop(backend, gone)) as url:
        yield url


def _drop(backend: MySQLBackend, name: str) -> None:
    try:
        backend.query(f"DROP DATABASE IF EXISTS {_quote(name)}")
    except Exception as error:
        if not backend.is_driver_error(error):
            raise
        raise DatabaseError(f"Cannot drop the scratch database {name} on the server of "
                            f"{backend.url}: {backend.error_message(error)}. Drop it by "
                            "hand.") from None


def _default_collation(backend: MySQLBackend) -> tuple[str, str]:
    """The current database's default character set and collation (checked to be
    plain words: they go into SQL text)."""
    rows = backend.query("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                         "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()")
    if not rows:
        raise DatabaseError(f"The connection to {backend.url} has no database selected; "
                            "the URL must name one.")
    charset, collation = (str(value) for value in rows[0])
    for word in (charset, collation):
        if not _PLAIN_IDENTIFIER.fullmatch(word):
            raise DatabaseError(f"Unexpected character set or collation name {word!r} "
                                f"of the database of {backend.url}.")
    return charset, collation


__all__ = ["dump_schema", "read_catalog", "scratch_database"]
