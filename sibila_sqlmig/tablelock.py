"""``lock: table``: the migration lock as a leased row in ``<table>_lock``.

Each statement is its own autocommit statement: no transaction or session state
outlives it, so the lock works through PgBouncer in transaction pooling mode and
on engines without advisory locks. A run INSERTs the row (the primary key refuses
a second holder) or takes over one whose lease ran out, judged by the server's
clock so that skewed clients agree. A daemon thread on a connection of its own
renews the lease every lease/3 s. If it finds the row gone or someone else's
(this process stalled past its lease; an operator deleted it), it says so at
once and stops; another thread cannot stop the run safely, so the run fails at
release with LockLostError (a run that failed anyway keeps its own error).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import LockLostError as LockLostError  # raised here; defined with the others

if TYPE_CHECKING:
    import psycopg

    from .backends.base import Backend

ROW = "migrate"  # the lock table's one row (one lock table per tracking table)
# The server's clock per engine, in UTC: the column type, "now", and "now plus the
# lease" (given in seconds to PostgreSQL, microseconds to MySQL, a modifier to SQLite).
_CLOCKS = {
    "postgresql": ("TIMESTAMPTZ", "statement_timestamp()",
                   "statement_timestamp() + {} * INTERVAL '1 second'"),
    "mysql": ("DATETIME(6)", "UTC_TIMESTAMP(6)", "UTC_TIMESTAMP(6) + INTERVAL {} MICROSECOND"),
    "sqlite": ("TEXT", "strftime('%Y-%m-%d %H:%M:%f', 'now')",
               "strftime('%Y-%m-%d %H:%M:%f', 'now', {})"),
}
# Besides a duplicate key, the errors of meeting another run's statement on the row:
# SQLite busy, MySQL lock wait timeout and deadlock, PostgreSQL deadlock. Try again.
_CONTENDED = {"SQLITE_BUSY", "SQLITE_LOCKED", 1205, 1213, "40P01"}


class _Row(NamedTuple):
    owner: str
    host: str
    pid: int
    acquired_at: Any
    heartbeat_at: Any
    expires_at: Any
    lease: float
    expired: bool


class _TableLock:
    """One run's hold on the lock row: taking it, renewing it, releasing it."""

    def __init__(self, backend: Backend) -> None:
        from .journal import client

        self.backend, self.owner, self.host = backend, uuid.uuid4().hex, client()[0]
        self.lease = float(backend.lock_lease)
        self.table = backend.qualified(backend.table.lock)
        _, self.now, later = _CLOCKS[backend.dialect]
        self.later = later.format(backend.placeholder)
        self.span: object = {"mysql": round(self.lease * 1e6),
                             "sqlite": f"+{self.lease:.3f} seconds"}.get(backend.dialect,
                                                                         self.lease)
        self.stop = threading.Event()
        self.lost: str | None = None  # who has the row now, once it is not ours

    def read(self, backend: Backend) -> _Row | None:
        """The row as it is now (None: the lock is free); expired by the server's clock."""
        rows = backend.query(
            "SELECT owner, host, pid, acquired_at, heartbeat_at, expires_at, lease_seconds, "
            f"CASE WHEN expires_at < {self.now} THEN 1 ELSE 0 END FROM {self.table} "
            f"WHERE name = {backend.placeholder}", [ROW])
        if not rows:
            return None
        owner, host, pid, acquired, beat, expires, lease, expired = rows[0]
        return _Row(owner, host, int(pid), acquired, beat, expires, float(lease), bool(expired))

    def try_once(self, _seconds: float) -> bool:
        """One attempt (at once): insert the row, or take over one whose lease ran out."""
        backend, p, now = self.backend, self.backend.placeholder, self.now
        mine = [self.owner, self.host, os.getpid(), self.span, self.lease]
        if _attempt(backend, f"INSERT INTO {self.table} (name, owner, host, pid, acquired_at, "
                    f"heartbeat_at, expires_at, lease_seconds) VALUES ({p}, {p}, {p}, {p}, "
                    f"{now}, {now}, {self.later}, {p})", [ROW, *mine]):
            return True
        row = self.read(backend)
        if row is None or not row.expired:
            return False  # held (or released just now: the next attempt inserts)
        # The WHERE makes the takeover atomic: of several runs taking over, one matches.
        _attempt(backend, f"UPDATE {self.table} SET owner = {p}, host = {p}, pid = {p}, "
                 f"acquired_at = {now}, heartbeat_at = {now}, expires_at = {self.later}, "
                 f"lease_seconds = {p} WHERE name = {p} AND owner = {p} AND expires_at < {now}",
                 [*mine, ROW, row.owner])
        taken = self.read(backend)
        if taken is None or taken.owner != self.owner:
            return False
        if backend.notify is not None:
            backend.notify(f"took over the migration lock on {backend.url} from {_who(row)}: "
                           f"its {row.lease:g} s lease had run out")
        return True

    def holder(self) -> tuple[str, str]:
        """Who holds the lock, and how to free it (wait_for_lock's notices and timeout)."""
        row = self.read(self.backend)
        if row is None:
            return "a run that has just released it", ""
        return _who(row), (
            f"If that run is dead, its lease expires {row.lease:g} s after its last heartbeat "
            f"(at {_when(row.expires_at)}) and the next run takes the lock over; or delete "
            f"its row: DELETE FROM {self.table} WHERE name = '{ROW}' AND owner = "
            f"'{row.owner}';")

    def lose(self, row: _Row | None) -> None:
        """Record (once) that the row is not ours any more, and say so at once."""
        if self.lost is None:
            self.lost = ("its row was deleted" if row is None else
                         f"its row now belongs to {_who(row)}")
            if self.backend.notify is not None:
                self.backend.notify(f"lost the migration lock on {self.backend.url} "
                                    f"({self.lost}): another run may be migrating now")

    def heartbeat(self) -> None:
        """The daemon thread's loop. Its connection is opened in the thread (SQLite's
        connections belong to theirs); after an error it tries a new one next time."""
        keeper: Backend | None = None
        p = self.backend.placeholder
        while not self.stop.wait(self.lease / 3):
            try:
                if keeper is None:
                    keeper = self.backend.sibling()
                    keeper.connect(create=False)
                keeper.query(f"UPDATE {self.table} SET heartbeat_at = {self.now}, expires_at "
                             f"= {self.later} WHERE name = {p} AND owner = {p}",
                             [self.span, ROW, self.owner])
                row = self.read(keeper)
            except Exception:  # the server is away: past the lease, release finds out
                if keeper is not None:
                    keeper.close()
                keeper = None
                continue
            if (row is None or row.owner != self.owner) and not self.stop.is_set():
                self.lose(row)
                break
        if keeper is not None:
            keeper.close()

    def release(self) -> None:
        """Delete our row (only ours: a row taken over stays its new owner's)."""
        row, p = self.read(self.backend), self.backend.placeholder
        if row is None or row.owner != self.owner:
            self.lose(row)
        self.backend.query(f"DELETE FROM {self.table} WHERE name = {p} AND owner = {p}",
                           [ROW, self.owner])


@contextlib.contextmanager
def table_lock(backend: Backend) -> Iterator[None]:
    """Hold the migration lock as a leased row in ``<table>_lock`` for the block.

    Waits through ``backend.wait_for_lock`` (its notices, and LockTimeoutError naming
    the holder's host and pid); renews the lease while the block runs; deletes the row
    at the end. LockLostError if the row was taken over or deleted meanwhile.
    """
    ensure_lock_table(backend)
    lock = _TableLock(backend)
    backend.wait_for_lock(lock.try_once, lock.holder)
    beat = threading.Thread(target=lock.heartbeat, name="sibila-sqlmig-lock-heartbeat",
                            daemon=True)
    beat.start()
    failed = True
    try:
        yield
        failed = False
    finally:
        lock.stop.set()
        beat.join(timeout=lock.lease)  # a renewal still waiting on the server is harmless
        try:
            lock.release()
        except Exception:
            if not failed:
                raise  # else the block's own error matters more; the lease frees the row
        if lock.lost is not None and not failed:
            raise LockLostError(
                f"The migration lock on {backend.url} was lost during this run: {lock.lost} "
                f"(a row is taken over only after {lock.lease:g} s without renewal: this "
                "process or the database stalled; or it was deleted by hand). Another run may "
                "have migrated at the same time: check `sibila-sqlmig status`, and raise "
                "lock_lease if it happens again.")


def ensure_lock_table(backend: Backend) -> None:
    """Create the lock table (and on PostgreSQL its schema) where it does not exist."""
    table, p = backend.table.lock, backend.placeholder
    if backend.relation_exists(table):
        return
    if backend.dialect == "postgresql" and table.schema:
        _create(backend, f"CREATE SCHEMA IF NOT EXISTS {backend.quote(table.schema)}",
                lambda: bool(backend.query(f"SELECT 1 FROM pg_namespace WHERE nspname = {p}",
                                           [table.schema])))
    kind = _CLOCKS[backend.dialect][0]
    _create(backend, f"CREATE TABLE IF NOT EXISTS {backend.qualified(table)} ("
            "name VARCHAR(64) NOT NULL PRIMARY KEY, owner VARCHAR(32) NOT NULL, "
            "host VARCHAR(255) NOT NULL, pid INTEGER NOT NULL, "
            f"acquired_at {kind} NOT NULL, heartbeat_at {kind} NOT NULL, "
            f"expires_at {kind} NOT NULL, lease_seconds DOUBLE PRECISION NOT NULL)"
            + (" ENGINE=InnoDB" if backend.dialect == "mysql" else ""),
            lambda: backend.relation_exists(table))


def _create(backend: Backend, sql: str, exists: Callable[[], bool]) -> None:
    # IF NOT EXISTS does not cover a run creating it at the same moment: PostgreSQL then
    # fails on pg_type's (or pg_namespace's) unique index. It exists then: go on.
    try:
        backend.query(sql)
    except Exception as error:
        if not backend.is_driver_error(error) or not exists():
            raise


def _attempt(backend: Backend, sql: str, params: list[Any]) -> bool:
    """Run one statement on the lock row; False where another run's got in the way."""
    try:
        backend.query(sql, params)
        return True
    except Exception as error:
        if not backend.is_driver_error(error):
            raise
        args: tuple[Any, ...] = getattr(error, "args", ())
        codes = [getattr(error, "sqlite_errorname", None), args[0] if args else None,
                 getattr(getattr(error, "diag", None), "sqlstate", None)]
        # Each driver's DB-API IntegrityError: the primary key, so the row is someone's.
        if any(kind.__name__ == "IntegrityError" for kind in type(error).__mro__) or any(
                isinstance(code, int | str) and code in _CONTENDED for code in codes):
            return False
        raise


def _who(row: _Row) -> str:
    return (f"host {row.host}, pid {row.pid} (run {row.owner[:8]}, acquired "
            f"{_when(row.acquired_at)}, last heartbeat {_when(row.heartbeat_at)})")


def _when(value: Any) -> str:
    """A time of the server's clock as UTC text (PostgreSQL's comes with its zone)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC)
        return f"{value:%Y-%m-%d %H:%M:%S} UTC"
    return f"{str(value)[:19]} UTC"


def detect_transaction_pooling(connection: psycopg.Connection[Any],
                               other: psycopg.Connection[Any] | None = None) -> bool:
    """True when ``connection`` (psycopg, autocommit) reaches PostgreSQL through a pooler
    in transaction mode, where a session lock (pg_advisory_lock) is unsafe: it stays with
    the server session one statement ran on, which the pooler then lends to other
    clients. False: a direct connection, or a pooler in session mode.

    A pooler gives the client a cancel key of its own, so the pid the client was told is
    not pg_backend_pid(): when they agree the connection is direct (one query). Else a
    second client pins a server session in a transaction: its being the one that just
    ran our statement (PgBouncer reuses the last freed), or our next statement moving to
    another, shows that server sessions pass between clients. ``other``, an open
    autocommit connection to the same database, is that second client (the migrating
    connection: a small session-mode pool then needs no third server session).
    """
    if not connection.autocommit:
        raise ValueError("detect_transaction_pooling needs an autocommit connection")
    first = _backend_pid(connection)
    if first == connection.info.backend_pid:
        return False
    for _ in range(1 if other is not None else 3):
        second = other or type(connection).connect(
            connection.info.dsn, autocommit=True, password=connection.info.password or None)
        try:
            with second.transaction():
                if _backend_pid(second) == first or _backend_pid(connection) != first:
                    return True
        finally:
            if other is None:
                second.close()
        first = _backend_pid(connection)
    return False


def _backend_pid(connection: psycopg.Connection[Any]) -> int:
    # Never prepared: a transaction pooler's other server sessions do not know it.
    row = connection.execute("SELECT pg_backend_pid()", prepare=False).fetchone()
    assert row is not None
    return int(row[0])
