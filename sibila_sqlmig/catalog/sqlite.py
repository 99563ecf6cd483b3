"""SQLite's catalog, schema dump and scratch database.

SQLite's schema is nothing but the CREATE texts in ``sqlite_master``: the pragmas
(``table_xinfo``, ``index_xinfo``) give what SQLite itself derives from them (column
types, defaults, NOT NULL, index keys), and the rest (CHECK, COLLATE, constraint
names, foreign-key options) is read from the text with a small tokenizer that knows
quotes, comments and nested parentheses. Expressions are compared as tokens (no
comments, one space, identifiers in lower case, quotes only where needed), so a
table rebuilt by a down.sql with the same meaning compares equal, while a lost
CHECK, FOREIGN KEY or UNIQUE does not.

Since everything derives from those texts, a table's objects are cached keyed by
its own text and its indexes' texts: ``check`` snapshots twice per version, and a
database that changed by one table costs one table's pragmas.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import shutil
import sqlite3
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator, Sequence
from typing import Any, NamedTuple

from ..backends.sqlite import SQLiteBackend
from ..config import DatabaseURL, TableName
from . import Catalog, DbObject, make_object

# ---------------------------------------------------------------------------- tokens


class _Token(NamedTuple):
    kind: str  # word, quoted, string, blob, number, param, op
    text: str


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<blob>[xX]'[^']*')
  | (?P<string>'(?:[^']|'')*'?)
  | (?P<quoted>"(?:[^"]|"")*"?|`(?:[^`]|``)*`?|\[[^\]]*\]?)
  | (?P<number>0[xX][0-9A-Fa-f]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>(?:[^\W\d]|[^\x00-\x7f])(?:[\w$]|[^\x00-\x7f])*)
  | (?P<param>\?\d*|[:@$][\w$]+)
  | (?P<op>->>|->|\|\||<<|>>|<=|>=|==|!=|<>|.)
""", re.VERBOSE | re.DOTALL)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")
_OPERATORS = {"==": "=", "<>": "!="}
# Words after which "(" opens a list or subquery rather than a call: shown with a space.
_KEYWORDS = frozenset({
    "all", "and", "as", "between", "by", "case", "check", "default", "distinct", "else",
    "end", "escape", "except", "exists", "filter", "from", "glob", "if", "in", "intersect",
    "is", "join", "like", "match", "not", "on", "or", "over", "partition", "recursive",
    "references", "regexp", "returning", "select", "set", "then", "union", "using",
    "values", "when", "where", "with"})


@functools.lru_cache(maxsize=8192)
def _tokens(sql: str) -> tuple[_Token, ...]:
    """The tokens of ``sql`` without whitespace and comments."""
    return tuple(_Token(match.lastgroup or "op", match.group())
                 for match in _TOKEN.finditer(sql)
                 if match.lastgroup not in ("space", "comment"))


def _lower(text: str) -> str:
    """ASCII lower case: SQLite's identifiers are case-insensitive for ASCII only."""
    return text.translate(_ASCII_LOWER)


def _value(token: _Token) -> str:
    """An identifier's name without its quotes."""
    text = token.text
    if token.kind == "quoted" or token.kind == "string":
        inner = text[1:-1] if len(text) > 1 and text[-1] in "\"`]'" else text[1:]
        return inner if text[0] == "[" else inner.replace(text[0] * 2, text[0])
    return text


def _ident(name: str) -> str:
    """An identifier as normalised text: lower case, quoted only where it must be."""
    lowered = _lower(name)
    return lowered if _PLAIN.fullmatch(lowered) else '"' + lowered.replace('"', '""') + '"'


def _shown(token: _Token, upper: bool) -> str:
    if token.kind == "word":
        return token.text.upper() if upper else _lower(token.text)
    if token.kind == "quoted":
        return _ident(_value(token))
    if token.kind in ("blob", "number"):
        return _lower(token.text)
    return _OPERATORS.get(token.text, token.text)


def _is_word(token: _Token | None, *words: str) -> bool:
    return token is not None and token.kind == "word" and token.text.upper() in words


def _render(tokens: Sequence[_Token], upper: bool = False) -> str:
    """Tokens as one normalised line: single spaces, none inside parentheses, before
    a comma or semicolon, around dots, after a unary sign or between a function and
    its "(" ."""
    parts: list[str] = []
    previous: _Token | None = None
    glue = True
    for token in tokens:
        text = _shown(token, upper)
        callee = previous is not None and previous.kind in ("word", "quoted") and not (
            previous.kind == "word" and _lower(previous.text) in _KEYWORDS)
        if not glue and text not in (")", ",", ".", ";") and not (text == "(" and callee):
            parts.append(" ")
        parts.append(text)
        glue = text in ("(", ".") or (text in ("-", "+", "~") and _unary(previous))
        previous = token
    return "".join(parts)


def _unary(previous: _Token | None) -> bool:
    return previous is None or (previous.kind == "op" and previous.text != ")") or (
        previous.kind == "word" and _lower(previous.text) in _KEYWORDS)


def _split(tokens: Sequence[_Token]) -> list[list[_Token]]:
    """Tokens split at the commas outside parentheses."""
    items: list[list[_Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.text == "," and depth == 0 and token.kind == "op":
            items.append([])
            continue
        if token.kind == "op":
            depth += (token.text == "(") - (token.text == ")")
        items[-1].append(token)
    return [item for item in items if item]


@functools.lru_cache(maxsize=8192)
def _normalised(sql: str) -> str:
    """A view's or trigger's CREATE text, comments and layout aside."""
    return _render(_tokens(sql))


class _Cursor:
    """Reads a token sequence front to back; never raises past its end."""

    def __init__(self, tokens: Sequence[_Token]) -> None:
        self.tokens, self.at = tokens, 0

    def peek(self, ahead: int = 0) -> _Token | None:
        index = self.at + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def next(self) -> _Token:
        token = self.peek() or _Token("op", "")
        self.at += 1
        return token

    def done(self) -> bool:
        return self.at >= len(self.tokens)

    def word(self, *words: str) -> bool:
        """Take the next token if it is one of ``words``."""
        if _is_word(self.peek(), *words):
            self.at += 1
            return True
        return False

    def group(self) -> list[_Token] | None:
        """Take a parenthesised group and return what is inside it."""
        token = self.peek()
        if token is None or token.text != "(" or token.kind != "op":
            return None
        depth, start = 0, self.at
        while not self.done():
            text = self.next()
            if text.kind == "op":
                depth += (text.text == "(") - (text.text == ")")
                if depth == 0:
                    break
        return list(self.tokens[start + 1:self.at - 1])

    def skip(self) -> None:
        """Skip one token, or a whole parenthesised group."""
        if self.group() is None:
            self.next()


# ------------------------------------------------------------------ CREATE TABLE text


class _ForeignKey(NamedTuple):
    name: str | None
    columns: str
    parent: str  # the parent table's name, lower case, unquoted
    parent_columns: str | None  # None: the parent's primary key
    options: str  # " on delete cascade deferrable initially deferred" ...


class _Constraint(NamedTuple):
    name: str | None
    type: str
    definition: str


class _ColumnText(NamedTuple):
    collation: str | None
    generated: str | None


@dataclasses.dataclass
class _TableText:
    """What a CREATE TABLE text says that the pragmas do not."""

    columns: dict[str, _ColumnText] = dataclasses.field(default_factory=dict)  # lower name
    constraints: list[_Constraint] = dataclasses.field(default_factory=list)
    foreign_keys: list[_ForeignKey] = dataclasses.field(default_factory=list)
    primary_key: tuple[str, ...] = ()  # its columns, for a REFERENCES without any
    options: frozenset[str] = frozenset()  # without_rowid, strict
    module: str | None = None  # a virtual table's "fts5(...)"


_TABLE_CONSTRAINTS = ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN")
_COLUMN_CONSTRAINTS = (*_TABLE_CONSTRAINTS, "NOT", "NULL", "DEFAULT", "COLLATE", "REFERENCES",
                       "GENERATED", "AS")


def _parse_table(sql: str) -> _TableText:
    """What a CREATE [VIRTUAL] TABLE text says beyond the pragmas."""
    tokens = _tokens(sql)
    parsed = _TableText()
    if _is_virtual(sql):
        using = next((i for i, token in enumerate(tokens) if _is_word(token, "USING")), None)
        parsed.module = _render(tokens[using + 1:]) if using is not None else ""
        return parsed
    start = next((i for i, token in enumerate(tokens) if token.text == "(" and
                  token.kind == "op"), len(tokens))
    cursor = _Cursor(tokens)
    cursor.at = start
    body = cursor.group() or []
    for element in _split(body):
        if _is_word(element[0], *_TABLE_CONSTRAINTS):
            _constraints(_Cursor(element), None, parsed)
        else:
            _column(element, parsed)
    options = {"_".join(_lower(token.text) for token in option)
               for option in _split(tokens[cursor.at:])}
    parsed.options = frozenset(options & {"without_rowid", "strict"})
    return parsed


def _column(element: list[_Token], parsed: _TableText) -> None:
    cursor = _Cursor(element)
    name = _value(cursor.next())
    while not cursor.done() and not _is_word(cursor.peek(), *_COLUMN_CONSTRAINTS):
        cursor.skip()  # the declared type, which table_xinfo gives
    parsed.columns[_lower(name)] = _constraints(cursor, name, parsed)


def _constraints(cursor: _Cursor, column: str | None, parsed: _TableText) -> _ColumnText:
    """Read a column's constraints (``column`` given) or a table constraint, adding
    PRIMARY KEY, UNIQUE, CHECK and FOREIGN KEY to ``parsed``."""
    collation = generated = name = None
    own = [_ident(column)] if column is not None else []
    while not cursor.done():
        if cursor.word("CONSTRAINT"):
            name = _value(cursor.next())
            continue
        if cursor.word("PRIMARY", "UNIQUE"):
            kind = "primary key" if _lower(cursor.tokens[cursor.at - 1].text) == "primary" \
                else "unique"
            cursor.word("KEY")
            keys, key_columns = _keys(cursor.group(), own, cursor)
            extra = _conflict(cursor) + (" autoincrement" if cursor.word("AUTOINCREMENT")
                                         else "")
            parsed.constraints.append(_Constraint(name, kind, f"{kind} ({keys}){extra}"))
            if kind == "primary key":
                parsed.primary_key = key_columns
        elif cursor.word("CHECK"):
            check = f"check ({_render(cursor.group() or [])})"
            parsed.constraints.append(_Constraint(name, "check", check))
        elif cursor.word("FOREIGN"):
            cursor.word("KEY")
            columns = ", ".join(_render(item) for item in _split(cursor.group() or []))
            if cursor.word("REFERENCES"):
                parsed.foreign_keys.append(_references(cursor, name, columns))
        elif cursor.word("REFERENCES"):
            parsed.foreign_keys.append(_references(cursor, name, ", ".join(own)))
        elif cursor.word("COLLATE"):
            collation = _value(cursor.next()).upper()
        elif cursor.word("AS"):
            generated = _render(cursor.group() or [])
            cursor.word("STORED", "VIRTUAL")
        elif cursor.word("NOT", "NULL"):
            cursor.word("NULL")
            _conflict(cursor)
        elif cursor.word("DEFAULT"):  # table_xinfo gives the default
            if cursor.group() is None and cursor.next().text in ("-", "+"):
                cursor.next()
        else:  # GENERATED ALWAYS, and whatever this reader does not know
            cursor.skip()
        name = None
    return _ColumnText(None if collation == "BINARY" else collation, generated)


def _keys(group: list[_Token] | None, own: list[str],
          cursor: _Cursor) -> tuple[str, tuple[str, ...]]:
    """A PRIMARY KEY's or UNIQUE's keys as text (the table constraint's list, else the
    column's own name with its DESC), and their columns."""
    if group is None:
        order = " desc" if cursor.word("DESC") else ""
        cursor.word("ASC")
        return ", ".join(own) + order, tuple(own)
    items = [item[:-1] if _is_word(item[-1], "ASC") else item for item in _split(group)]
    return (", ".join(_render(item) for item in items),
            tuple(_ident(_value(item[0])) for item in items))


def _conflict(cursor: _Cursor) -> str:
    """An ON CONFLICT clause as text ("" for ABORT, the default)."""
    if not (_is_word(cursor.peek(), "ON") and _is_word(cursor.peek(1), "CONFLICT")):
        return ""
    cursor.at += 2
    resolution = _lower(cursor.next().text)
    return "" if resolution == "abort" else f" on conflict {resolution}"


def _references(cursor: _Cursor, name: str | None, columns: str) -> _ForeignKey:
    """The rest of a REFERENCES clause; NO ACTION and immediate checking (the
    defaults) are left out, so that writing them out compares equal."""
    parent = _lower(_value(cursor.next()))
    group = cursor.group()
    parent_columns = ", ".join(_render(item) for item in _split(group)) if group else None
    actions = {"delete": "no action", "update": "no action"}
    deferred = False
    while not cursor.done():
        if cursor.word("ON"):
            event = _lower(cursor.next().text)
            action = _lower(cursor.next().text)
            if action in ("set", "no"):
                action += " " + _lower(cursor.next().text)
            actions[event] = action
        elif cursor.word("MATCH"):
            cursor.next()  # parsed and ignored by SQLite
        elif cursor.word("DEFERRABLE") or (_is_word(cursor.peek(1), "DEFERRABLE")
                                           and cursor.word("NOT")):
            negated = _lower(cursor.tokens[cursor.at - 1].text) == "not"
            cursor.word("DEFERRABLE")
            initially = cursor.word("INITIALLY") and _lower(cursor.next().text) == "deferred"
            deferred = initially and not negated
        else:
            break
    options = "".join(f" on {event} {action}" for event, action in actions.items()
                      if action != "no action")
    return _ForeignKey(name, columns, parent, parent_columns,
                       options + (" deferrable initially deferred" if deferred else ""))


# ---------------------------------------------------------------------- sqlite_master


class _Schema(NamedTuple):
    """sqlite_master's rows that make the schema, by name; the excluded tables, the
    internal sqlite_* tables and virtual tables' shadow tables left out."""

    tables: list[tuple[str, str]]  # (name, sql)
    indexes: dict[str, list[tuple[str, str]]]  # lower-case table name: (name, sql)
    views: list[tuple[str, str]]
    triggers: list[tuple[str, str, str]]  # (name, table, sql)


def _master_rows(backend: SQLiteBackend) -> list[tuple[Any, ...]]:
    # Autoindexes have no sql: their constraints stand for them.
    return backend.query("SELECT type, name, tbl_name, sql FROM main.sqlite_master "
                         "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")


def _schema(backend: SQLiteBackend, exclude: Collection[TableName],
            rows: list[tuple[Any, ...]] | None = None) -> _Schema:
    left_out = {_lower(table.name) for table in exclude}
    if rows is None:
        rows = _master_rows(backend)
    schema = _Schema([], {}, [], [])
    for kind, name, table, sql in sorted(rows, key=lambda row: (_lower(row[1]), row[1])):
        if _lower(table) in left_out:
            continue
        if kind == "table":
            schema.tables.append((name, sql))
        elif kind == "index":
            schema.indexes.setdefault(_lower(table), []).append((name, sql))
        elif kind == "view":
            schema.views.append((name, sql))
        elif kind == "trigger":
            schema.triggers.append((name, table, sql))
    shadow = _shadow_tables(backend, schema.tables)
    if shadow:
        schema.tables[:] = [table for table in schema.tables if table[0] not in shadow]
    return schema


_VIRTUAL = re.compile(r"\s*CREATE\s+VIRTUAL\s", re.IGNORECASE)


def _is_virtual(sql: str) -> bool:
    return _VIRTUAL.match(sql) is not None


def _shadow_tables(backend: SQLiteBackend, tables: list[tuple[str, str]]) -> set[str]:
    """The tables a virtual table's module made for itself (an FTS index's _data,
    _idx ...): part of the virtual table, which makes them again when loaded."""
    virtual = [name for name, sql in tables if _is_virtual(sql)]
    if not virtual:
        return set()
    with contextlib.suppress(sqlite3.Error):  # PRAGMA table_list is SQLite 3.37+
        return {name for (name,) in backend.query(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'")}
    # Before it: modules name them "<virtual table>_<role>", quoted.
    prefixes = tuple(_lower(name) + "_" for name in virtual)
    return {name for name, sql in tables if _lower(name).startswith(prefixes)
            and len(_tokens(sql)) > 2 and _tokens(sql)[2].kind in ("string", "quoted")}


# --------------------------------------------------------------------------- tables


class _TableInfo(NamedTuple):
    objects: tuple[DbObject, ...]  # the table, its columns, constraints and indexes
    primary_key: tuple[str, ...]
    foreign_keys: tuple[_ForeignKey, ...]  # made objects once every primary key is known


_CacheKey = tuple[str, str, tuple[tuple[str, str], ...]]
# A table's objects by the texts they derive from (its name, its CREATE TABLE, its
# indexes' CREATE INDEX). 500 tables of 5 columns, a CHECK, a FOREIGN KEY and an
# index each: ~130 ms to read cold, ~6 ms warm (also after one table changed).
_CACHE: OrderedDict[_CacheKey, _TableInfo] = OrderedDict()
_CACHE_SIZE = 4096
_CACHE_LOCK = threading.Lock()


def _table_info(backend: SQLiteBackend, name: str, sql: str,
                indexes: tuple[tuple[str, str], ...]) -> _TableInfo:
    key = (name, sql, indexes)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    info = _read_table(backend, name, sql, indexes)
    with _CACHE_LOCK:
        _CACHE[key] = info
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return info


def _read_table(backend: SQLiteBackend, name: str, sql: str,
                indexes: tuple[tuple[str, str], ...]) -> _TableInfo:
    parsed = _parse_table(sql)
    try:
        rows = backend.query('SELECT name, type, "notnull", dflt_value, pk, hidden '
                             "FROM pragma_table_xinfo(?, 'main')", [name])
    except sqlite3.Error:  # a virtual table whose module this connection lacks
        rows = []
    rows = [row for row in rows if row[5] != 1]  # a virtual table's hidden columns
    keys = sum(1 for row in rows if row[4])
    objects = [make_object("table", name, "", {
        "columns": [row[0] for row in rows], "module": parsed.module,
        "without_rowid": "without_rowid" in parsed.options or None,
        "strict": "strict" in parsed.options or None})]
    objects.extend(_column_object(name, parsed, row, keys) for row in rows)
    objects.extend(make_object("constraint", constraint.name or constraint.definition, name,
                               {"type": constraint.type, "definition": constraint.definition})
                   for constraint in parsed.constraints)
    objects.extend(_index_object(backend, name, index, text) for index, text in indexes)
    return _TableInfo(tuple(objects), parsed.primary_key, tuple(parsed.foreign_keys))


def _column_object(table: str, parsed: _TableText, row: tuple[object, ...],
                   keys: int) -> DbObject:
    name, declared, notnull, default, key, hidden = (str(row[0]), str(row[1] or ""), *row[2:])
    text = parsed.columns.get(_lower(name), _ColumnText(None, None))
    # SQLite makes a rowid alias (the one INTEGER PRIMARY KEY) and a WITHOUT ROWID
    # table's key NOT NULL without it being written: writing it changes nothing.
    implied = bool(key) and ("without_rowid" in parsed.options or (
        keys == 1 and declared.upper() == "INTEGER"))
    generated = None
    if hidden in (2, 3) and text.generated is not None:
        generated = f"({text.generated}) {'stored' if hidden == 3 else 'virtual'}"
    return make_object("column", name, table, {
        "type": _render(_tokens(declared), upper=True), "nullable": not (notnull or implied),
        "default": None if default is None else _render(_tokens(str(default))),
        "collation": text.collation, "generated": generated})


def _index_object(backend: SQLiteBackend, table: str, name: str, sql: str) -> DbObject:
    """An explicit index: its keys from index_xinfo (the expression of a key SQLite
    reports as cid -2 from the CREATE INDEX text), its WHERE from the text."""
    tokens = _tokens(sql)
    cursor = _Cursor(tokens)
    while not cursor.done() and not cursor.word("ON"):
        cursor.next()
    cursor.next()  # the table
    keys = _split(cursor.group() or [])
    predicate = _render(tokens[cursor.at:]) if cursor.word("WHERE") else None
    columns = []
    for seqno, cid, column, desc, collation in backend.query(
            'SELECT seqno, cid, name, "desc", coll FROM pragma_index_xinfo(?, \'main\') '
            'WHERE "key"', [name]):
        if cid == -2 and seqno < len(keys):
            text = _render(_bare_key(keys[seqno]))
        else:
            text = "rowid" if cid == -1 else _ident(str(column))
        if collation and str(collation).upper() != "BINARY":
            text += f" collate {_lower(str(collation))}"
        columns.append(text + (" desc" if desc else ""))
    return make_object("index", name, table, {
        "unique": _is_word(tokens[1] if len(tokens) > 1 else None, "UNIQUE"),
        "columns": columns, "predicate": predicate})


def _bare_key(key: list[_Token]) -> list[_Token]:
    """An index key's expression without its ASC/DESC and COLLATE (index_xinfo gives them)."""
    if key and _is_word(key[-1], "ASC", "DESC"):
        key = key[:-1]
    if len(key) > 2 and _is_word(key[-2], "COLLATE"):
        key = key[:-2]
    return key


def _foreign_key_object(table: str, key: _ForeignKey,
                        primary_keys: dict[str, tuple[str, ...]]) -> DbObject:
    """REFERENCES parent without columns means the parent's primary key: written out
    so that both spellings compare equal."""
    parent_columns = key.parent_columns
    if parent_columns is None and primary_keys.get(key.parent):
        parent_columns = ", ".join(primary_keys[key.parent])
    target = _ident(key.parent) + (f"({parent_columns})" if parent_columns else "")
    definition = f"foreign key ({key.columns}) -> {target}{key.options}"
    return make_object("constraint", key.name or definition, table,
                       {"type": "foreign key", "definition": definition})


@functools.lru_cache(maxsize=4096)
def _trigger_parts(sql: str) -> tuple[str, str]:
    """A trigger's timing (BEFORE when not written) and event."""
    cursor = _Cursor(_tokens(sql))
    while not cursor.done() and not cursor.word("TRIGGER"):
        cursor.next()
    if cursor.word("IF"):  # NOT EXISTS
        cursor.at += 2
    cursor.next()
    if (cursor.peek() or _Token("op", "")).text == ".":  # schema.name
        cursor.at += 2
    timing = "BEFORE"
    if cursor.word("BEFORE", "AFTER"):
        timing = cursor.tokens[cursor.at - 1].text.upper()
    elif cursor.word("INSTEAD"):
        cursor.word("OF")
        timing = "INSTEAD OF"
    event = cursor.next().text.upper()
    if cursor.word("OF"):
        columns = []
        while not cursor.done() and not _is_word(cursor.peek(), "ON"):
            token = cursor.next()
            if token.text != ",":
                columns.append(_shown(token, False))
        event += " OF " + ", ".join(columns)
    return timing, event


# ------------------------------------------------------------------------ interface


def read_catalog(backend: SQLiteBackend, exclude: Collection[TableName]) -> Catalog:
    """The schema of the backend's main database, normalised; the tables in
    ``exclude`` (the tracking table, journal and lock table) and their indexes and
    triggers left out, as are SQLite's own sqlite_* tables.

    The schema of a SQLite database is its sqlite_master texts and nothing else, so
    a read whose texts are those of a recent read returns that read's catalog (the
    same object): ``check`` reads three times per version, and its down.sql mostly
    gives back the texts of before its up.sql."""
    rows = _master_rows(backend)
    key = (frozenset(rows), frozenset(_lower(table.name) for table in exclude))
    with _CACHE_LOCK:
        found = _RECENT.get(key)
        if found is not None:
            _RECENT.move_to_end(key)
            return found
    catalog = _read_catalog(backend, exclude, rows)
    with _CACHE_LOCK:
        _RECENT[key] = catalog
        while len(_RECENT) > _RECENT_SIZE:
            _RECENT.popitem(last=False)
    return catalog


# The catalogs of the last few distinct schemas read (see read_catalog).
_RECENT: OrderedDict[tuple[frozenset[tuple[Any, ...]], frozenset[str]], Catalog] = \
    OrderedDict()
_RECENT_SIZE = 8


def _read_catalog(backend: SQLiteBackend, exclude: Collection[TableName],
                  rows: list[tuple[Any, ...]]) -> Catalog:
    schema = _schema(backend, exclude, rows)
    infos = {name: _table_info(backend, name, sql, tuple(schema.indexes.get(_lower(name), ())))
             for name, sql in schema.tables}
    primary_keys = {_lower(name): info.primary_key for name, info in infos.items()}
    objects: list[DbObject] = []
    for name, info in infos.items():
        objects.extend(info.objects)
        objects.extend(_foreign_key_object(name, key, primary_keys)
                       for key in info.foreign_keys)
    objects.extend(make_object("view", name, "", {"definition": _normalised(sql)})
                   for name, sql in schema.views)
    # A trigger's tbl_name is spelled as its CREATE TRIGGER wrote it.
    owners = {_lower(name): name for name, _ in (*schema.tables, *schema.views)}
    for name, table, sql in schema.triggers:
        timing, event = _trigger_parts(sql)
        objects.append(make_object("trigger", name, owners.get(_lower(table), table), {
            "timing": timing, "event": event, "definition": _normalised(sql)}))
    return Catalog.of(objects)


def dump_schema(backend: SQLiteBackend, exclude: Collection[TableName]) -> str:
    """sqlite_master's CREATE texts (as ``sqlite3 db .schema`` shows them), each ending
    with ``;`` and a newline: tables by name (SQLite checks no reference when it
    creates one), then indexes by name, views with each after the views it reads,
    then triggers by name. The tables in ``exclude`` are left out; the tracking
    table is the caller's to leave in."""
    schema = _schema(backend, exclude)
    indexes = sorted((index for group in schema.indexes.values() for index in group),
                     key=lambda index: (_lower(index[0]), index[0]))
    statements = [sql for _, sql in (*schema.tables, *indexes, *_view_order(schema.views))]
    statements.extend(sql for _, _, sql in schema.triggers)
    return "".join(f"{sql};\n" for sql in statements)


def _view_order(views: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Views (given by name) with each after the views its text names; the first by
    name of the rest where they name each other in a circle."""
    names = {_lower(name) for name, _ in views}
    needs = {name: {_lower(_value(token)) for token in _tokens(sql)
                    if token.kind in ("word", "quoted")} & names - {_lower(name)}
             for name, sql in views}
    order: list[tuple[str, str]] = []
    done: set[str] = set()
    pending = list(views)
    while pending:
        view = next((view for view in pending if needs[view[0]] <= done), pending[0])
        order.append(view)
        done.add(_lower(view[0]))
        pending.remove(view)
    return order


@contextlib.contextmanager
def scratch_database(backend: SQLiteBackend) -> Iterator[DatabaseURL]:
    """An empty SQLite file in a new temporary folder, removed on exit with whatever
    SQLite put beside it (-wal, -shm, -journal)."""
    folder = tempfile.mkdtemp(prefix="sqlmig_scratch_")
    try:
        path = os.path.join(folder, "scratch.db")
        sqlite3.connect(path).close()  # the (empty) file, for connect(create=False)
        yield DatabaseURL("sqlite", path=path, source="the scratch database")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["dump_schema", "read_catalog", "scratch_database"]
