"""SQLite: the embedded default.

The lock is SQLite's own write lock: every migration file runs in a
``BEGIN IMMEDIATE`` transaction, which waits (busy timeout) for any other
writer, and the runner re-checks the tracking row inside it. The sqlite3
module's implicit transactions are switched off (``isolation_level=None``)
so that nothing commits behind the runner's back.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import TableName
from ..errors import DatabaseError, ForeignKeyCheckError
from ..model import Header
from .base import Backend

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..dburl import DatabaseURL


class SQLiteBackend(Backend):
    dialect = "sqlite"
    placeholder = "?"
    # The rowid (not AUTOINCREMENT, whose sqlite_sequence row every commit would write):
    # the journal is only appended to, so max(id) + 1 is never an id used before.
    journal_id_type = "INTEGER PRIMARY KEY"
    journal_time_type = "TEXT"  # SQLite has no time type; ISO text sorts and reads well
    lock_covers_run = False  # BEGIN IMMEDIATE locks one file's transaction

    @contextlib.contextmanager
    def session_lock(self) -> Iterator[None]:
        yield  # each file's BEGIN IMMEDIATE is the lock (see begin)

    _connection: sqlite3.Connection | None = None
    #: PRAGMA foreign_keys on the migrating connection (settings: sqlite_foreign_keys).
    enforce_foreign_keys = False

    @property
    def connection(self) -> sqlite3.Connection:
        assert self._connection is not None, "connect() first"
        return self._connection

    def connect(self, *, create: bool) -> bool:
        if self._connection is not None:
            return True
        path = self.url.path
        created = path != ":memory:" and not os.path.exists(path)
        if created:
            if not create:
                return False
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
        try:
            # A small statement cache: a data migration's large INSERTs are each run
            # once, and caching them compiled would hold many times their size.
            self._connection = sqlite3.connect(path, timeout=self.lock_timeout,
                                               isolation_level=None, cached_statements=16)
            self._connection.execute("SELECT count(*) FROM sqlite_master")
            if self.enforce_foreign_keys:
                self._connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as error:
            raise DatabaseError(f"Cannot open the SQLite database {path}: {error}. Check the "
                                "path and that it is a SQLite file you may write.") from None
        try:
            self.connected(self._connection)
        except BaseException:
            self.close()
            if created and os.path.exists(path) and os.path.getsize(path) == 0:
                os.unlink(path)  # the file this failed connect made, and nothing else
            raise
        # Whatever the application likes on its own connections, the bookkeeping here
        # reads plain tuples and text.
        self._connection.row_factory = None
        self._connection.text_factory = str
        self._connection.isolation_level = None  # the runner's BEGIN and COMMIT, no others
        return True

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def execute(self, sql: str) -> None:
        # Connection.execute refuses a string with two statements, so a mis-split
        # can never run unnoticed.
        if not self._statement_timeout:
            self.connection.execute(sql).fetchall()
            return
        self._deadline = time.monotonic() + self._statement_timeout
        try:
            self.connection.execute(sql).fetchall()
        finally:  # the file's statements only: never the bookkeeping after them
            self._deadline = None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql, tuple(params)).fetchall()

    def is_driver_error(self, error: BaseException) -> bool:
        return isinstance(error, (sqlite3.Error, sqlite3.Warning))

    def begin(self) -> None:
        if self.notify is None:  # nobody to tell: SQLite's busy handler waits it out
            with self._waiting_for_the_write_lock():
                self.connection.execute("BEGIN IMMEDIATE")
            return
        # Someone listens (the command line): wait in slices, so that a run waiting for
        # another's write transaction can say so after a second, and every ten.
        self.wait_for_lock(self._begin_within, self._writer)
        self.connection.execute(f"PRAGMA busy_timeout = {round(self.lock_timeout * 1000)}")

    @contextlib.contextmanager
    def file_transaction(self, header: Header, *, path: Path, version: str,
                         direction: str) -> Iterator[None]:
        """With ``foreign_keys`` in the header, SQLite's table-rebuild procedure: the pragma
        is set outside the transaction (inside one SQLite ignores it), PRAGMA
        foreign_key_check runs before COMMIT (violations roll the file back), and the
        connection's previous setting comes back on every path."""
        if header.foreign_keys is None:
            with self.transaction(), self._limits(header):
                yield
            return
        previous = bool(self.query("PRAGMA foreign_keys")[0][0])
        self.connection.execute(f"PRAGMA foreign_keys = {int(header.foreign_keys)}")
        try:
            with self.transaction(), self._limits(header):
                # Orphans from before this file (SQLite enforces nothing by default) are
                # not its doing: only the rows it leaves without a parent fail it.
                before = set() if header.foreign_keys else _violations(self.connection)
                yield
                if not header.foreign_keys:
                    made = sorted((row for row in _violations(self.connection)
                                   if row not in before), key=lambda row: (row[0], row[1] or 0))
                    if made:
                        raise ForeignKeyCheckError(version=version, path=path,
                                                   direction=direction, violations=made)
        finally:
            with contextlib.suppress(sqlite3.Error):  # a closed connection keeps nothing
                self.connection.execute(f"PRAGMA foreign_keys = {int(previous)}")

    @contextlib.contextmanager
    def file_session(self, header: Header) -> Iterator[None]:
        with self._limits(header):
            yield

    # statement_timeout: SQLite's progress handler interrupts a statement past its deadline.
    _deadline: float | None = None
    _statement_timeout: float | None = None

    @contextlib.contextmanager
    def _limits(self, header: Header) -> Iterator[None]:
        """A file's lock_timeout as the busy timeout of its statements (BEGIN IMMEDIATE,
        the migration lock, waited lock_wait), and its statement_timeout; then back."""
        lock, statement = self.file_timeouts(header)
        connection = self.connection
        if lock is not None:  # 0: wait as long as it takes (a day, in SQLite's terms)
            connection.execute(
                f"PRAGMA busy_timeout = {max(1, round((lock or 86400) * 1000))}")
        if statement:
            self._statement_timeout = statement
            connection.set_progress_handler(self._past_deadline, 10_000)
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):
                if lock is not None:
                    connection.execute(
                        f"PRAGMA busy_timeout = {round(self.lock_timeout * 1000)}")
                if statement:
                    connection.set_progress_handler(None, 0)
            self._statement_timeout = self._deadline = None

    def _past_deadline(self) -> int:
        return int(self._deadline is not None and time.monotonic() > self._deadline)

    def is_lock_failure(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and _busy(error)

    def lock_holders(self) -> str:
        who, advice = self._writer()
        return f"The lock is held by {who}. {advice}"

    def error_message(self, error: BaseException) -> str:
        if self._statement_timeout and str(error) == "interrupted":
            return (f"interrupted: the statement ran longer than its statement_timeout "
                    f"({self._statement_timeout:g} s)")
        return super().error_message(error)

    def _begin_within(self, seconds: float) -> bool:
        self.connection.execute(f"PRAGMA busy_timeout = {round(seconds * 1000)}")
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
            return False
        return True

    def _writer(self) -> tuple[str, str]:
        path = self.url.path
        return ("another process's write transaction (another migration run, or the "
                "application)", f"`fuser -v {path}` lists the processes that have it open.")

    def ensure_table(self) -> None:
        # Reads first: no write lock is needed when both tables are there.
        if not (self.table_exists() and self.journal_exists()):
            with self.transaction():  # the write lock, waited for as for a file
                super().ensure_table()

    @contextlib.contextmanager
    def _waiting_for_the_write_lock(self) -> Iterator[None]:
        """Turn SQLite's "database is locked" after the busy timeout into the lock error."""
        try:
            yield
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
            raise self.lock_timeout_error(*self._writer()) from None

    def relation_exists(self, table: TableName) -> bool:
        rows = self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          [table.name])
        return bool(rows)

    def strip_zeros(self, expression: str) -> str:
        return f"ltrim({expression}, '0')"

    # --- the catalog (sibila_sqlmig/catalog/sqlite.py) ---------------------------------

    def catalog(self) -> Catalog:
        from ..catalog.sqlite import read_catalog

        return read_catalog(self, self.tool_tables)

    def dump_schema(self) -> str:
        from ..catalog.sqlite import dump_schema

        return dump_schema(self, (self.table.journal, self.table.lock))

    def go_fast(self) -> None:
        self.query("PRAGMA synchronous = OFF")

    def scratch_database(self) -> contextlib.AbstractContextManager[DatabaseURL]:
        from ..catalog.sqlite import scratch_database

        return scratch_database(self)



def _violations(connection: sqlite3.Connection) -> set[tuple[str, int | None, str, int]]:
    """PRAGMA foreign_key_check: (table, rowid, parent, foreign key index) of each row
    whose parent is missing."""
    return {(str(table), rowid, str(parent), int(key))
            for table, rowid, parent, key in connection.execute("PRAGMA foreign_key_check")}


def _busy(error: sqlite3.OperationalError) -> bool:
    """True for SQLite's "database is locked" / "busy": another writer holds the lock."""
    return "locked" in str(error) or "busy" in str(error)
