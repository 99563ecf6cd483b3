"""A database's schema as plain values, and the differences between two of them.

Each engine's module (``sqlite.py``, ``postgres.py``, ``mysql.py``) reads its own
catalog into a :class:`Catalog`; everything here is pure. ``check``, ``verify
--drift`` and their tests compare two catalogs with :func:`compare` and word each
:class:`Difference` for their reader.

Normalising is the readers' job: two databases built by the same SQL must give
equal catalogs (no object ids, no ordinal numbers with gaps, no AUTO_INCREMENT
counters, no definers), and the tool's own tables are left out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple

from ..dburl import DatabaseURL

# The kinds of object a catalog holds, in the order a report lists them.
KINDS = ("extension", "schema", "type", "sequence", "function", "procedure", "table",
         "column", "constraint", "index", "view", "trigger")

Key = tuple[str, str, str]  # (kind, table or "", name)


class DbObject(NamedTuple):
    """One schema object, normalised.

    ``kind``: one of KINDS. ``name``: the object's name (schema-qualified only when
    it is not in the connection's default schema). ``table``: the table (or view) a
    column, constraint, index or trigger belongs to, else "". ``properties``: what
    two equal objects share, as sorted (name, value) pairs of text: a column's
    ``type``, ``nullable``, ``default``, ``collation``; an index's ``unique``,
    ``columns``, ``predicate``, ``method``; a view's ``definition``; a table's
    ``columns`` (their order) ...
    """

    kind: str
    name: str
    table: str = ""
    properties: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> Key:
        return (self.kind, self.table, self.name)

    def describe(self) -> str:
        """``index idx_tags_tag on paragraph_tags``, ``column paragraph_tags.tag``."""
        if self.kind == "column":
            return f"column {self.table}.{self.name}"
        return f"{self.kind} {self.name}" + (f" on {self.table}" if self.table else "")


def make_object(kind: str, name: str, table: str = "",
                properties: Mapping[str, object] | None = None) -> DbObject:
    """A DbObject whose properties are sorted and turned to text (None is left out,
    so an engine that lacks a property never differs from itself)."""
    pairs = tuple(sorted((key, _text(value)) for key, value in (properties or {}).items()
                         if value is not None))
    return DbObject(kind, name, table, pairs)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


class Catalog(NamedTuple):
    """Every object of a database's schema, by key."""

    objects: Mapping[Key, DbObject]

    @classmethod
    def of(cls, objects: Iterable[DbObject]) -> Catalog:
        """A catalog of ``objects`` (a key given twice keeps the last)."""
        return cls({found.key: found for found in objects})

    def __len__(self) -> int:
        return len(self.objects)

    def kinds(self) -> dict[str, int]:
        """How many objects of each kind."""
        counts: dict[str, int] = {}
        for kind, _, _ in self.objects:
            counts[kind] = counts.get(kind, 0) + 1
        return counts


class Difference(NamedTuple):
    """One object that differs between an expected and an actual catalog.

    ``change``: "added" (only in actual), "removed" (only in expected) or "changed";
    ``properties``: of a changed object, (property, expected, actual) for each one
    that differs ("" where a side lacks it).
    """

    change: str
    expected: DbObject | None
    actual: DbObject | None
    properties: tuple[tuple[str, str, str], ...] = ()

    @property
    def subject(self) -> DbObject:
        """The object that differs (as it is now, or as expected if it is gone)."""
        found = self.actual if self.actual is not None else self.expected
        assert found is not None  # a Difference always has one side
        return found

    def details(self, expected: str = "expected") -> str:
        """``type TEXT (expected: INTEGER), nullable yes (expected: no)``, the word
        ``expected`` replaced by what the caller compares with."""
        return ", ".join(f"{name} {_shown(now)} ({expected}: {_shown(wanted)})"
                         for name, wanted, now in self.properties)

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of one difference (``check --json``, ``verify --drift --json``)."""
        found = self.subject
        return {"change": self.change, "kind": found.kind, "name": found.name,
                "table": found.table or None,
                "properties": [{"name": name, "expected": expected or None,
                                "actual": actual or None}
                               for name, expected, actual in self.properties]}


def _shown(value: str) -> str:
    return value if value else "none"


def compare(expected: Catalog, actual: Catalog) -> list[Difference]:
    """Every object added, removed or changed from ``expected`` to ``actual``, in a
    stable order (kind as in KINDS, then table, then name). A column, constraint,
    index or trigger that is only there because its whole table is added or removed
    is not listed again."""
    differences: list[Difference] = []
    if expected.objects is actual.objects or expected.objects == actual.objects:
        return differences  # the common case of check: one comparison, in C
    added_tables = {key[2] for key in actual.objects.keys() - expected.objects.keys()
                    if key[0] in ("table", "view")}
    removed_tables = {key[2] for key in expected.objects.keys() - actual.objects.keys()
                      if key[0] in ("table", "view")}
    differing = [key for key in expected.objects.keys() | actual.objects.keys()
                 if expected.objects.get(key) != actual.objects.get(key)]
    for key in sorted(differing, key=_order):
        before, after = expected.objects.get(key), actual.objects.get(key)
        kind, table, _ = key
        if kind in ("column", "constraint", "index", "trigger") and table and (
                (before is None and table in added_tables)
                or (after is None and table in removed_tables)):
            continue  # part of a table that is added or removed as a whole
        if before is None:
            differences.append(Difference("added", None, after))
        elif after is None:
            differences.append(Difference("removed", before, None))
        else:
            old, new = dict(before.properties), dict(after.properties)
            changed = tuple((name, old.get(name, ""), new.get(name, ""))
                            for name in sorted(old.keys() | new.keys())
                            if old.get(name) != new.get(name)
                            and not _said_by_columns(kind, name, old, new))
            if not changed:
                continue
            differences.append(Difference("changed", before, after, changed))
    return differences


def _said_by_columns(kind: str, name: str, old: Mapping[str, str],
                     new: Mapping[str, str]) -> bool:
    """A table's column list that differs only because columns were added or removed:
    those columns are differences of their own. A new order of the same columns is
    not, and stays."""
    if kind not in ("table", "view") or name != "columns":
        return False
    return sorted(old.get(name, "").split(", ")) != sorted(new.get(name, "").split(", "))


def _order(key: Key) -> tuple[int, str, str]:
    kind, table, name = key
    return (KINDS.index(kind) if kind in KINDS else len(KINDS), table, name)


@contextlib.contextmanager
def database_beside(url: DatabaseURL, name: str, drop: Callable[[str], None]
                    ) -> Iterator[DatabaseURL]:
    """The URL of database ``name``, just made on the server of ``url`` (its user,
    password, host, port and query options), dropped with ``drop`` on the way out,
    also after an error inside, whose own error then wins."""
    try:
        yield DatabaseURL(url.dialect, host=url.host, port=url.port, user=url.user,
                          password=url.password, database=name, query=url.query,
                          source=f"the scratch database beside {url}")
    except BaseException:
        with contextlib.suppress(Exception):  # never hide why the caller failed
            drop(name)
        raise
    drop(name)


__all__ = ["KINDS", "Catalog", "DbObject", "Difference", "compare", "database_beside",
           "make_object"]
