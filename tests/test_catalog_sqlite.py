"""SQLite's catalog reader, schema dump and scratch database, on real database files."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.backends.sqlite import SQLiteBackend
from sibila_sqlmig.catalog import Catalog, DbObject, Difference, compare, make_object
from sibila_sqlmig.catalog.sqlite import dump_schema, read_catalog, scratch_database
from sibila_sqlmig.config import TableName, load_settings

TOOL = TableName("schema_migrations")
EXCLUDE = (TOOL, TOOL.journal, TOOL.lock)

Make = Callable[[Sequence[str]], SQLiteBackend]

RICH = [
    "CREATE TABLE authors (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL "
    "COLLATE NOCASE, email TEXT UNIQUE, born INTEGER CHECK (born > 1800), "
    "created TEXT DEFAULT CURRENT_TIMESTAMP)",
    """CREATE TABLE books (
        id INTEGER PRIMARY KEY,
        author_id INTEGER NOT NULL REFERENCES authors ON DELETE CASCADE,
        title TEXT NOT NULL DEFAULT 'untitled, (really)',  -- a comment with a (
        price NUMERIC(10,2) DEFAULT -1,
        title_lower TEXT GENERATED ALWAYS AS (lower(title)) VIRTUAL,
        CONSTRAINT positive_price CHECK (price >= 0 OR title = 'free, (no price)'),
        UNIQUE (author_id, title)
    )""",
    "CREATE TABLE tags (book_id INTEGER, tag TEXT, PRIMARY KEY (book_id, tag), "
    "FOREIGN KEY (book_id) REFERENCES books (id) DEFERRABLE INITIALLY DEFERRED) WITHOUT ROWID",
    'CREATE TABLE "reading log" (id INTEGER PRIMARY KEY, value REAL NOT NULL) STRICT',
    "CREATE INDEX books_title ON books (title COLLATE NOCASE DESC, lower(title)) "
    "WHERE price > 0",
    "CREATE UNIQUE INDEX authors_name ON authors (name)",
    "CREATE VIEW cheap_books AS SELECT id, title FROM books WHERE price < 10 /* cheap */",
    "CREATE VIEW cheap_titles AS SELECT title FROM cheap_books",
    "CREATE TRIGGER books_touch AFTER UPDATE OF title ON books BEGIN "
    "UPDATE books SET price = price WHERE id = NEW.id; END",
    "CREATE VIRTUAL TABLE book_search USING fts5(title, body)",
    # The tool's own tables, with an index and a trigger of theirs.
    "CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, applied_at TEXT)",
    "CREATE TABLE schema_migrations_journal (id INTEGER PRIMARY KEY, version TEXT)",
    "CREATE INDEX schema_migrations_journal_version ON schema_migrations_journal (version)",
    "CREATE TABLE schema_migrations_lock (id INTEGER PRIMARY KEY, holder TEXT)",
    "CREATE TRIGGER schema_migrations_guard BEFORE DELETE ON schema_migrations "
    "BEGIN SELECT 1; END",
    "INSERT INTO authors (name) VALUES ('a')",
    "ANALYZE",  # sqlite_stat1, which is SQLite's, not the schema's
]

BASE = [
    "CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE items (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id) "
    "ON DELETE CASCADE, code TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL DEFAULT 0 "
    "CHECK (qty >= 0), note TEXT COLLATE NOCASE)",
    "CREATE INDEX items_qty ON items (qty DESC) WHERE qty > 0",
    "CREATE VIEW item_codes AS SELECT code FROM items",
]


def _rebuilt(columns: str) -> list[str]:
    """SQLite's table-rebuild procedure for ``items`` with another definition."""
    return ["DROP VIEW item_codes", f"CREATE TABLE items_new ({columns})",
            "INSERT INTO items_new SELECT * FROM items", "DROP TABLE items",
            "ALTER TABLE items_new RENAME TO items",
            "CREATE INDEX items_qty ON items (qty DESC) WHERE qty > 0", BASE[3]]


@pytest.fixture
def make_db(tmp_path: Path) -> Iterator[Make]:
    """A new database file per call, built by the given statements."""
    backends: list[SQLiteBackend] = []

    def make(statements: Sequence[str]) -> SQLiteBackend:
        backend = _backend(tmp_path / f"db{len(backends)}.db")
        backends.append(backend)
        for statement in statements:
            backend.execute(statement)
        return backend

    yield make
    for backend in backends:
        backend.close()


def _backend(path: Path) -> SQLiteBackend:
    settings = load_settings(database=f"sqlite:///{path}", migrations=path.parent,
                             config=os.devnull, environ={})
    backend = backend_for(settings)
    assert isinstance(backend, SQLiteBackend)
    backend.connect(create=True)
    return backend


def _catalog(make_db: Make, statements: Sequence[str]) -> Catalog:
    return read_catalog(make_db(statements), EXCLUDE)


def _subject(found: Difference) -> DbObject:
    subject = found.actual or found.expected
    assert subject is not None
    return subject


def test_a_rich_schema_is_read_exactly(make_db: Make) -> None:
    catalog = _catalog(make_db, RICH)
    objects = catalog.objects
    expected = [
        make_object("table", "authors", "", {"columns": "id, name, email, born, created"}),
        make_object("column", "name", "authors",
                    {"type": "TEXT", "nullable": False, "collation": "NOCASE"}),
        make_object("column", "created", "authors",
                    {"type": "TEXT", "nullable": True, "default": "current_timestamp"}),
        make_object("column", "id", "authors", {"type": "INTEGER", "nullable": False}),
        make_object("constraint", "primary key (id) autoincrement", "authors",
                    {"type": "primary key", "definition": "primary key (id) autoincrement"}),
        make_object("constraint", "unique (email)", "authors",
                    {"type": "unique", "definition": "unique (email)"}),
        make_object("constraint", "check (born > 1800)", "authors",
                    {"type": "check", "definition": "check (born > 1800)"}),
        make_object("column", "title", "books", {"type": "TEXT", "nullable": False,
                                                 "default": "'untitled, (really)'"}),
        make_object("column", "price", "books",
                    {"type": "NUMERIC(10, 2)", "nullable": True, "default": "-1"}),
        make_object("column", "title_lower", "books", {
            "type": "TEXT", "nullable": True, "generated": "(lower(title)) virtual"}),
        make_object("constraint", "positive_price", "books", {
            "type": "check",
            "definition": "check (price >= 0 or title = 'free, (no price)')"}),
        make_object("constraint", "foreign key (author_id) -> authors(id) on delete cascade",
                    "books", {"type": "foreign key", "definition":
                              "foreign key (author_id) -> authors(id) on delete cascade"}),
        make_object("constraint", "unique (author_id, title)", "books",
                    {"type": "unique", "definition": "unique (author_id, title)"}),
        make_object("index", "books_title", "books", {
            "unique": False, "columns": "title collate nocase desc, lower(title)",
            "predicate": "price > 0"}),
        make_object("index", "authors_name", "authors",
                    {"unique": True, "columns": "name collate nocase"}),
        make_object("table", "tags", "", {"columns": "book_id, tag", "without_rowid": True}),
        make_object("column", "book_id", "tags", {"type": "INTEGER", "nullable": False}),
        make_object("constraint", "primary key (book_id, tag)", "tags",
                    {"type": "primary key", "definition": "primary key (book_id, tag)"}),
        make_object("constraint",
                    "foreign key (book_id) -> books(id) deferrable initially deferred", "tags", {
                        "type": "foreign key", "definition":
                        "foreign key (book_id) -> books(id) deferrable initially deferred"}),
        make_object("table", "reading log", "", {"columns": "id, value", "strict": True}),
        make_object("view", "cheap_books", "", {"definition": "create view cheap_books as "
                                                "select id, title from books where price < 10"}),
        make_object("trigger", "books_touch", "books", {
            "timing": "AFTER", "event": "UPDATE OF title",
            "definition": "create trigger books_touch after update of title on books begin "
                          "update books set price = price where id = new.id; end"}),
        make_object("table", "book_search", "",
                    {"columns": "title, body", "module": "fts5(title, body)"}),
    ]
    for wanted in expected:
        assert objects.get(wanted.key) == wanted
    assert catalog.kinds() == {"table": 5, "column": 16, "constraint": 10, "index": 2,
                               "view": 2, "trigger": 1}


def test_the_tools_own_and_sqlites_own_tables_are_left_out(make_db: Make) -> None:
    catalog = _catalog(make_db, RICH)
    names = {name for _, _, name in catalog.objects} | {table for _, table, _ in
                                                        catalog.objects}
    assert not {name for name in names if name.startswith(("schema_migrations", "sqlite_"))}
    # The FTS index's own tables (book_search_data ...) belong to the virtual table.
    assert not {name for name in names if name.startswith("book_search_")}


def test_the_same_sql_gives_equal_catalogs_in_any_order(make_db: Make) -> None:
    reordered = [RICH[9], RICH[1], RICH[7], RICH[4], RICH[0], RICH[6], RICH[5], RICH[3],
                 RICH[2], RICH[8], *RICH[10:]]
    assert compare(_catalog(make_db, RICH), _catalog(make_db, RICH)) == []
    assert compare(_catalog(make_db, RICH), _catalog(make_db, reordered)) == []


def test_a_rebuild_with_the_same_meaning_compares_equal(make_db: Make) -> None:
    """Spelling, layout, quotes, comments, defaults written out, a CHECK moved to the
    table and REFERENCES naming the parent's key: the same table."""
    columns = '''"ID" integer not null primary key,
        Parent_Id INTEGER,  -- the parent
        [code] text not null,
        qty integer not null default (0),
        note text collate nocase,
        unique (code), check(qty>=0),
        foreign key (parent_id) references "parents" on delete cascade on update no action
            not deferrable'''
    expected = _catalog(make_db, BASE)
    actual = _catalog(make_db, [*BASE, *_rebuilt(columns)])
    assert [(found.change, _subject(found).describe(), found.properties)
            for found in compare(expected, actual)] == [
        ("added", "column items.ID", ()), ("added", "column items.Parent_Id", ()),
        ("removed", "column items.id", ()), ("removed", "column items.parent_id", ())]
    # Only the columns' own names differ in case: with those as before, all is equal.
    columns = columns.replace('"ID"', "id").replace("Parent_Id", "parent_id")
    assert compare(expected, _catalog(make_db, [*BASE, *_rebuilt(columns)])) == []


def test_a_column_added_later_equals_one_created_with_the_table(make_db: Make) -> None:
    created = _catalog(make_db, ["CREATE TABLE t (a INTEGER, b TEXT NOT NULL DEFAULT 'x' "
                                 "CHECK (b != ''), CONSTRAINT a_positive CHECK (a > 0))"])
    added = _catalog(make_db, ["CREATE TABLE t (a INTEGER, CONSTRAINT a_positive "
                               "CHECK (a > 0))",
                               "ALTER TABLE t ADD COLUMN b   TEXT  NOT NULL DEFAULT 'x' "
                               "CHECK(b<>'')"])
    assert compare(created, added) == []


def test_altering_and_altering_back_leaves_an_equal_catalog(make_db: Make) -> None:
    """ADD then DROP COLUMN, and renames back and forth, which SQLite applies by
    rewriting the CREATE texts (quoting the names it rewrote)."""
    back = ["ALTER TABLE items ADD COLUMN extra TEXT DEFAULT 'x'",
            "ALTER TABLE items DROP COLUMN extra",
            "ALTER TABLE items RENAME COLUMN qty TO quantity",
            "ALTER TABLE items RENAME COLUMN quantity TO qty",
            "ALTER TABLE parents RENAME TO old_parents",
            "ALTER TABLE old_parents RENAME TO parents"]
    assert compare(_catalog(make_db, BASE), _catalog(make_db, [*BASE, *back])) == []


MISTAKES = {
    "index left behind": (["CREATE INDEX items_note ON items (note)"], "added", "index"),
    "view left behind": (["CREATE VIEW old AS SELECT 1"], "added", "view"),
    "trigger left behind": (["CREATE TRIGGER old AFTER INSERT ON items BEGIN SELECT 1; END"],
                            "added", "trigger"),
    "index dropped": (["DROP INDEX items_qty"], "removed", "index"),
    "index lost its DESC": (["DROP INDEX items_qty",
                             "CREATE INDEX items_qty ON items (qty) WHERE qty > 0"],
                            "changed", "index"),
    "column of another type": (_rebuilt(
        "id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id) ON DELETE CASCADE, "
        "code TEXT NOT NULL UNIQUE, qty TEXT NOT NULL DEFAULT 0 CHECK (qty >= 0), "
        "note TEXT COLLATE NOCASE"), "changed", "column"),
    "column nullable": (_rebuilt(
        "id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id) ON DELETE CASCADE, "
        "code TEXT NOT NULL UNIQUE, qty INTEGER DEFAULT 0 CHECK (qty >= 0), "
        "note TEXT COLLATE NOCASE"), "changed", "column"),
    "another default": (_rebuilt(
        "id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id) ON DELETE CASCADE, "
        "code TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL DEFAULT 1 CHECK (qty >= 0), "
        "note TEXT COLLATE NOCASE"), "changed", "column"),
    "collation lost": (_rebuilt(
        "id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id) ON DELETE CASCADE, "
        "code TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL DEFAULT 0 CHECK (qty >= 0), "
        "note TEXT"), "changed", "column"),
    "CHECK lost on rebuild": (_rebuilt(
        "id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id) ON DELETE CASCADE, "
        "code TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL DEFAULT 0, "
        "note TEXT COLLATE NOCASE"), "removed", "constraint"),
    "FOREIGN KEY lost on rebuild": (_rebuilt(
        "id INTEGER PRIMARY KEY, parent_id INTEGER, "
        "code TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL DEFAULT 0 CHECK (qty >= 0), "
        "note TEXT COLLATE NOCASE"), "removed", "constraint"),
    "UNIQUE lost on rebuild": (_rebuilt(
        "id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id) ON DELETE CASCADE, "
        "code TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 0 CHECK (qty >= 0), "
        "note TEXT COLLATE NOCASE"), "removed", "constraint"),
    "ON DELETE CASCADE lost on rebuild": (_rebuilt(
        "id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id), "
        "code TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL DEFAULT 0 CHECK (qty >= 0), "
        "note TEXT COLLATE NOCASE"), "replaced", "constraint"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_usual_mistake_is_a_difference(make_db: Make, mistake: str) -> None:
    statements, change, kind = MISTAKES[mistake]
    differences = compare(_catalog(make_db, BASE), _catalog(make_db, [*BASE, *statements]))
    seen = [(found.change, _subject(found).kind) for found in differences]
    # A constraint without a name is named by its definition: another one is another.
    assert seen == ([("added", kind), ("removed", kind)] if change == "replaced"
                    else [(change, kind)])


def test_a_cached_read_still_sees_every_change(make_db: Make) -> None:
    backend = make_db(BASE)
    first = read_catalog(backend, EXCLUDE)
    assert compare(first, read_catalog(backend, EXCLUDE)) == []
    backend.execute("ALTER TABLE items ADD COLUMN extra TEXT")
    backend.execute("CREATE INDEX parents_name ON parents (name)")
    assert [(found.change, _subject(found).describe()) for found in
            compare(first, read_catalog(backend, EXCLUDE))] == [
        ("added", "column items.extra"),
        ("added", "index parents_name on parents")]


@pytest.fixture
def sqlite3_client() -> str:
    client = shutil.which("sqlite3")
    if client is None:
        pytest.skip("the sqlite3 command-line client is not installed")
    return client


def test_the_dump_is_deterministic_and_loads_into_an_empty_database(
        make_db: Make, tmp_path: Path, sqlite3_client: str) -> None:
    backend = make_db(RICH)
    for_dump = (TOOL.journal, TOOL.lock)
    dump = dump_schema(backend, for_dump)
    assert dump == dump_schema(backend, for_dump)
    assert dump == dump_schema(make_db(RICH), for_dump)
    assert "schema_migrations_journal" not in dump and "schema_migrations_lock" not in dump
    assert "CREATE TABLE schema_migrations (" in dump
    assert "sqlite_" not in dump and "book_search_data" not in dump
    assert all(statement.startswith("CREATE ") for statement in dump.split(";\n")[:-1])
    assert dump.endswith("END;\n")

    loaded = tmp_path / "loaded.db"
    subprocess.run([sqlite3_client, str(loaded)], input=dump, text=True, check=True,
                   capture_output=True)
    again = _backend(loaded)
    try:
        assert compare(read_catalog(backend, for_dump), read_catalog(again, for_dump)) == []
        assert dump_schema(again, for_dump) == dump
    finally:
        again.close()


def test_the_dump_puts_a_view_after_the_views_it_reads(make_db: Make) -> None:
    backend = make_db(["CREATE VIEW b_base AS SELECT 1 AS one",
                       "CREATE VIEW a_top AS SELECT one FROM c_middle",
                       "CREATE VIEW c_middle AS SELECT one FROM b_base",
                       "CREATE TABLE z (id INTEGER PRIMARY KEY)",
                       "CREATE INDEX a_index ON z (id)"])
    assert dump_schema(backend, ()) == (
        "CREATE TABLE z (id INTEGER PRIMARY KEY);\n"
        "CREATE INDEX a_index ON z (id);\n"
        "CREATE VIEW b_base AS SELECT 1 AS one;\n"
        "CREATE VIEW c_middle AS SELECT one FROM b_base;\n"
        "CREATE VIEW a_top AS SELECT one FROM c_middle;\n")


def test_the_scratch_database_is_an_empty_file_removed_afterwards(make_db: Make) -> None:
    backend = make_db(BASE)
    with scratch_database(backend) as url:
        assert url.dialect == "sqlite"
        path = Path(url.path)
        scratch = SQLiteBackend(url, TOOL, 5.0)
        assert scratch.connect(create=False)
        assert len(read_catalog(scratch, EXCLUDE)) == 0
        scratch.execute("PRAGMA journal_mode = WAL")
        scratch.execute("CREATE TABLE t (a INTEGER)")
        assert Path(f"{path}-wal").exists()
        scratch.close()
    assert not path.parent.exists()


def test_the_scratch_database_is_removed_after_an_error(make_db: Make) -> None:
    backend = make_db([])
    with pytest.raises(RuntimeError), scratch_database(backend) as url:
        sqlite3.connect(url.path).close()
        raise RuntimeError("the build failed")
    assert not Path(url.path).parent.exists()
