"""The rules of the lint (docs/lint.md), over the split statements of one file.

``FileRules`` reads the statements in order and keeps what the file did so far
(tables it created, enum values it added, whether it set a lock timeout); each
statement's first words (``head_words``) say whether a rule can apply, and only
those statements (DDL, a few PRAGMA and SET) are read further, and only their first
``_HEAD`` characters: a file of large INSERTs costs one ``head_words`` per statement.
Rules name themselves by id; ``lint.py`` holds their levels and texts (``RULES``),
drops another engine's rules, and applies the ``-- sqlmig: allow`` comments.

``prepare`` refuses a file on the error-level findings (``lint.refusals``) and
prints its warnings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from .splitting import head_words, leading_words


class Hit(NamedTuple):
    """One rule that fired on one statement."""

    rule: str
    message: str | None = None  # None: the rule's why
    tables: tuple[str, ...] = ()  # a DROP TABLE's tables (dropped from a rebuild)


_HEAD = 20_000  # DDL is read this far at most
_NAME = r'(?:"(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[\w$]+)'
_QNAME = rf"{_NAME}(?: ?\. ?{_NAME})*"
_NAME_PART = re.compile(_NAME)
_MASK = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.S)
_CREATE_TABLE = re.compile(
    r"CREATE (?:OR REPLACE )?(?:(?:GLOBAL |LOCAL )?TEMP(?:ORARY)? |UNLOGGED )?"
    rf"(?:TABLE|MATERIALIZED VIEW) (?:IF NOT EXISTS )?({_QNAME})", re.I)
_CREATE_INDEX = re.compile(
    r"CREATE (?:OR REPLACE )?(?:UNIQUE |FULLTEXT |SPATIAL )?INDEX (CONCURRENTLY )?"
    rf"(?:IF NOT EXISTS )?(?:{_QNAME} )?(?:USING \w+ )?ON (?:ONLY )?({_QNAME})", re.I)
_CREATE_TRIGGER = re.compile(
    r"CREATE (?:OR REPLACE )?(?:CONSTRAINT )?(?:DEFINER ?= ?\S+ )?TRIGGER (?:IF NOT EXISTS )?"
    rf"{_QNAME} .*? ON ({_QNAME})", re.I)
_ALTER_TABLE = re.compile(
    rf"ALTER (?:ONLINE |IGNORE )?TABLE (?:IF EXISTS )?(?:ONLY )?({_QNAME}) ?\*?", re.I)
_DROP_TABLE = re.compile(rf"DROP TABLES? (?:IF EXISTS )?({_QNAME}(?: ?, ?{_QNAME})*)", re.I)
_RENAME_PAIR = re.compile(rf"({_QNAME}) TO ({_QNAME})", re.I)
_ADD_VALUE = re.compile(r"ALTER\s+TYPE\s.+?\sADD\s+VALUE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                        r"('(?:[^']|'')*')", re.I | re.S)
# Actions of ALTER TABLE (upper case, strings masked).
_ADD_CONSTRAINT = re.compile(rf"ADD (?:CONSTRAINT {_NAME} )?(FOREIGN|CHECK|PRIMARY|UNIQUE|"
                             r"EXCLUDE)\b")
_REWRITING_ADD = re.compile(
    r"\b(?:SMALLSERIAL|BIGSERIAL|SERIAL[248]?|IDENTITY|STORED)\b|\bDEFAULT\b.*\b(?:RANDOM|"
    r"RANDOM_NORMAL|GEN_RANDOM_UUID|UUID_GENERATE_V\w+|CLOCK_TIMESTAMP|TIMEOFDAY|NEXTVAL|"
    r"CURRVAL|LASTVAL) ?\(")
_ALTER_COLUMN = re.compile(rf"ALTER (?:COLUMN )?{_NAME} ")
_TYPE = re.compile(r"(?:SET DATA )?TYPE ")
_WIDENING = re.compile(r"(?:SET DATA )?TYPE (?:VARCHAR|CHARACTER VARYING|TEXT)"
                       r"(?: ?\( ?\d+ ?\))?")
_DROP_COLUMN = re.compile(r"DROP (?:COLUMN\b|(?!(?:CONSTRAINT|INDEX|KEY|PRIMARY|FOREIGN|CHECK|"
                          r"PARTITION|SYSTEM|PERIOD)\b))")
_RENAME = re.compile(r"RENAME (?!(?:CONSTRAINT|INDEX|KEY)\b)")
_RENAME_TO = re.compile(rf"RENAME (?:TO |AS )?({_QNAME})$", re.I)
_CHANGE = re.compile(rf"CHANGE (?:COLUMN )?(?:IF EXISTS )?({_NAME}) ({_NAME})", re.I)
_ALGORITHM = re.compile(r"\b(?:ALGORITHM|LOCK) ?=")

_DDL = frozenset({"ALTER", "CREATE", "DROP", "RENAME", "REINDEX", "TRUNCATE", "LOCK"})
_MYSQL_DML = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})
_MYSQL_DDL = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"})
_LOCK_TIMEOUTS = frozenset({"LOCK_TIMEOUT", "LOCK_WAIT_TIMEOUT"})
_NON_TRANSACTIONAL = {
    "postgresql": (
        ("CREATE", "INDEX", "CONCURRENTLY"), ("CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"),
        ("DROP", "INDEX", "CONCURRENTLY"), ("VACUUM",), ("CREATE", "DATABASE"),
        ("DROP", "DATABASE"), ("ALTER", "SYSTEM"), ("CREATE", "TABLESPACE"),
        ("DROP", "TABLESPACE"),
    ),
    "sqlite": (("VACUUM",),),
    "mysql": (),
}


def _flat(sql: str) -> str:
    """The statement's head on one line: comments and runs of space become one space,
    string literals ``''`` (so their text never looks like a keyword)."""
    head = sql[:_HEAD]
    if "'" in head or "-" in head or "/" in head:
        head = _MASK.sub(lambda m: "''" if m[0][0] == "'" else " ", head)
    return " ".join(head.split())


def _key(name: str) -> str:
    """A table's name as the file's statements are compared on: the last part of a
    qualified name, unquoted names folded to lower case."""
    last: str = _NAME_PART.findall(name)[-1]
    return last[1:-1] if last[0] in '"`[' else last.lower()


class FileRules:
    """The rules over one file's statements, fed in order (``check``): what the
    statements so far did is the state the rules read."""

    def __init__(self, dialect: str, transactional: bool, has_lock_timeout: bool) -> None:
        self.dialect = dialect
        self.transactional = transactional
        self.lock_timeout = has_lock_timeout
        self.created: set[str] = set()  # tables created by this file: hazards do not matter
        self.replaced: set[str] = set()  # names a new table was renamed to (a rebuild)
        self.labels: list[str] = []  # enum values added so far, as quoted literals
        self.kinds: set[str] = set()  # MySQL: "ddl", "dml" seen so far
        self.told: set[str] = set()  # the once-per-file rules already reported

    def check(self, sql: str) -> Iterator[Hit]:
        """The rules that fire on one statement; then remember what it did."""
        words = head_words(sql)
        if not words:
            return
        if self.transactional:
            yield from self._in_transaction(words, sql)
            if self.labels:
                yield from self._enum_use(words, sql)
            if self.dialect == "mysql":
                yield from self._mixing(words)
        if words[0] in _DDL:
            yield from self._ddl(words, sql)
        elif words[0] == "SET" and not _LOCK_TIMEOUTS.isdisjoint(words):
            self.lock_timeout = True

    def _once(self, rule: str) -> Iterator[Hit]:
        if rule not in self.told:
            self.told.add(rule)
            yield Hit(rule)

    def _in_transaction(self, words: tuple[str, ...], sql: str) -> Iterator[Hit]:
        """What cannot run, or means nothing, inside the file's transaction."""
        dialect = self.dialect
        if _is_transaction_control(words[:3], dialect):
            yield Hit("transaction-control", (
                f"'{' '.join(leading_words(sql, 2))}' controls the transaction, but the file "
                "already runs in one transaction with its tracking row, and this would end it "
                "early"))
        elif dialect == "sqlite" and words[0] == "PRAGMA" and ("=" in sql or "(" in sql):
            if "FOREIGN_KEYS" in words[1:3]:
                yield Hit("sqlite-foreign-keys-pragma")
            elif not {"JOURNAL_MODE", "SYNCHRONOUS"}.isdisjoint(words[1:3]):
                yield Hit("sqlite-pragma-in-transaction")
        elif _needs_own_transaction(words, dialect):
            yield Hit("cannot-run-in-transaction", (
                f"'{' '.join(leading_words(sql, 4))}' cannot run inside a transaction on "
                f"{dialect}"))

    def _enum_use(self, words: tuple[str, ...], sql: str) -> Iterator[Hit]:
        """A value this file added to an enum, used in the same transaction."""
        if words[:2] == ("ALTER", "TYPE") or words[0] == "COMMENT":
            return  # ADD VALUE 'b' AFTER 'a', or a comment: not a use
        used = [label for label in self.labels if label in sql]  # C speed, at any size
        if used:
            yield Hit("enum-value-used-in-transaction", (
                f"the enum value {used[0]} is added by this file and used here, in the same "
                "transaction, which PostgreSQL refuses ('unsafe use of new value')"))

    def _mixing(self, words: tuple[str, ...]) -> Iterator[Hit]:
        """MySQL: the first statement that makes the file both DDL and DML."""
        kind = ("dml" if words[0] in _MYSQL_DML else
                "ddl" if words[0] in _MYSQL_DDL and words[1:2] != ("TEMPORARY",) else "")
        if kind:
            self.kinds.add(kind)
            if len(self.kinds) == 2:
                yield from self._once("mysql-ddl-with-dml")

    def _ddl(self, words: tuple[str, ...], sql: str) -> Iterator[Hit]:
        """Rules on DDL; and the tables the file creates and renames."""
        flat = _flat(sql)
        if match := _CREATE_TABLE.match(flat):
            self.created.add(_key(match[1]))
        elif match := _CREATE_INDEX.match(flat):
            if _key(match[2]) not in self.created and not match[1]:
                yield Hit("index-without-concurrently")
                yield from self._locks()
        elif match := _ALTER_TABLE.match(flat):
            yield from self._alter_table(_key(match[1]), flat[match.end():])
        elif match := _DROP_TABLE.match(flat):
            tables = tuple(t for t in map(_key, re.findall(_QNAME, match[1]))
                           if t not in self.created)
            if tables:
                yield Hit("drop-table", tables=tables)
                yield from self._locks()
        elif words[0] == "RENAME":
            for old, new in _RENAME_PAIR.findall(flat):
                yield from self._renamed(_key(old), _key(new))
        elif words[:2] == ("ALTER", "TYPE") and (match := _ADD_VALUE.match(sql[:_HEAD])):
            self.labels.append(match[1])
        elif words[0] == "REINDEX" and "CONCURRENTLY" not in words:
            yield Hit("index-without-concurrently")
            yield from self._locks()
        elif words[0] in ("TRUNCATE", "LOCK") or (
                (match := _CREATE_TRIGGER.match(flat)) and _key(match[1]) not in self.created):
            yield from self._locks()

    def _locks(self) -> Iterator[Hit]:
        """DDL that takes a strong lock on an existing table."""
        if not self.lock_timeout:
            yield from self._once("missing-lock-timeout")

    def _renamed(self, old: str, new: str) -> Iterator[Hit]:
        """A table renamed: a hazard, unless it is new (then the new name is new too)."""
        if old in self.created:  # a new table takes an old name: a rebuild
            self.created.add(new)
            self.replaced.add(new)
        else:
            yield Hit("rename")

    def _alter_table(self, table: str, rest: str) -> Iterator[Hit]:
        """ALTER TABLE: on a new table only a rename matters; else each action's rules."""
        actions = _actions(rest)
        if table in self.created:
            for action in actions:
                if match := _RENAME_TO.match(action):
                    yield from self._renamed(table, _key(match[1]))
            return
        yield from self._locks()
        if not _ALGORITHM.search(rest.upper()):
            yield Hit("mysql-alter-without-algorithm")
        for action in actions:
            yield from _alter_action(action)


def _actions(rest: str) -> list[str]:
    """The comma-separated actions of an ALTER TABLE (commas in parentheses kept)."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(rest):  # an ALTER TABLE is short: a loop is fine
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(rest[start:index].strip())
            start = index + 1
    parts.append(rest[start:].strip())
    return parts


def _alter_action(action: str) -> Iterator[Hit]:
    """The rules on one action of ALTER TABLE on an existing table."""
    upper = action.upper()
    if match := _ADD_CONSTRAINT.match(upper):
        if match[1] in ("FOREIGN", "CHECK") and "NOT VALID" not in upper:
            yield Hit("constraint-without-not-valid")
        elif match[1] in ("PRIMARY", "UNIQUE", "EXCLUDE") and "USING INDEX" not in upper:
            yield Hit("constraint-builds-index")
    elif upper.startswith("ADD ") and _REWRITING_ADD.search(upper):
        yield Hit("add-column-rewrite")
    elif match := _ALTER_COLUMN.match(upper):
        tail = upper[match.end():]
        if tail.startswith("SET NOT NULL"):
            yield Hit("set-not-null")
        elif _TYPE.match(tail) and not _WIDENING.fullmatch(tail):
            yield Hit("column-type-rewrite")
    elif _DROP_COLUMN.match(upper):
        yield Hit("drop-column")
    elif _RENAME.match(upper):
        yield Hit("rename")
    elif (match := _CHANGE.match(action)) and _key(match[1]) != _key(match[2]):
        yield Hit("rename")  # MySQL's CHANGE old new: a rename


def _is_transaction_control(words: tuple[str, ...], dialect: str) -> bool:
    """BEGIN, START TRANSACTION, COMMIT, ROLLBACK, END, ABORT (but not savepoints)."""
    if not words:
        return False
    first, rest = words[0], words[1:]
    if first == "BEGIN":
        return not (rest[:1] == ("ATOMIC",) or rest[:2] == ("NOT", "ATOMIC"))
    if first == "START":
        return rest[:1] == ("TRANSACTION",)
    if first == "ROLLBACK":
        return "TO" not in rest  # ROLLBACK TO SAVEPOINT stays inside the transaction
    if first in ("COMMIT", "ABORT"):
        return True
    return first == "END" and dialect == "postgresql"


def _needs_own_transaction(words: tuple[str, ...], dialect: str) -> bool:
    """True for statements the engine refuses inside a transaction block."""
    if dialect == "postgresql" and words[:1] == ("REINDEX",) and "CONCURRENTLY" in words:
        return True
    return any(words[: len(prefix)] == prefix for prefix in _NON_TRANSACTIONAL[dialect])
