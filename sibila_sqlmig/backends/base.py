"""The backend interface: connection, transactions, the lock and bookkeeping.

A backend knows its engine's SQL for the tracking table and how to lock;
the runner owns the control flow. A new engine is one small subclass.
"""

from __future__ import annotations

import abc
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from ..config import TableName
from ..dburl import DatabaseURL
from ..errors import ConnectError, LockTimeoutError
from ..model import AppliedRow

_POLL_SECONDS = (0.05, 0.1, 0.2, 0.5)  # waits between attempts at the migration lock


class Backend(abc.ABC):
    """One connection to one database, speaking one dialect."""

    dialect: ClassVar[str]
    #: The driver's placeholder for a bound parameter.
    placeholder: ClassVar[str] = "%s"
    #: Column type of the version key (MySQL cannot index TEXT).
    version_type: ClassVar[str] = "TEXT"
    #: True where migration_lock() excludes other runs for the whole run; where it
    #: does not (SQLite locks per transaction), each file re-checks its row first.
    lock_covers_run: ClassVar[bool] = True

    def __init__(self, url: DatabaseURL, table: TableName, lock_timeout: float) -> None:
        self.url = url
        self.table = table
        self.lock_timeout = lock_timeout
        #: Told, in one line, what a run is waiting for (the server, another run's lock).
        self.notify: Callable[[str], None] | None = None

    def wait_for_server(self, seconds: float) -> None:
        """Connect, retrying for up to ``seconds`` while the server refuses (a container
        or CI service still starting); ``notify`` hears once what is awaited."""
        deadline = time.monotonic() + seconds
        told = False
        while True:
            try:
                self.connect(create=False)
                return
            except ConnectError as error:
                if time.monotonic() >= deadline or not error.retryable:
                    raise
                if not told and self.notify is not None:
                    self.notify(f"waiting up to {seconds:g} s for {self.url} to accept "
                                f"connections ({error.reason})")
                    told = True
            time.sleep(0.5)

    # --- connection -------------------------------------------------------------------

    @abc.abstractmethod
    def connect(self, *, create: bool) -> bool:
        """Open the connection (once; later calls keep it). With ``create`` False, return
        False instead of creating a database that does not exist yet."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; never raises."""

    # --- statements -------------------------------------------------------------------

    @abc.abstractmethod
    def execute(self, sql: str) -> None:
        """Run exactly one statement of a migration file (a multi-statement string fails)."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a bookkeeping statement with bound parameters; return its rows."""

    @abc.abstractmethod
    def is_driver_error(self, error: BaseException) -> bool:
        """True for errors the database or driver raised (a failed statement)."""

    def error_message(self, error: BaseException) -> str:
        """The database's message for a failed statement, on one line, without password."""
        return self.scrub(" ".join(str(error).split()) or type(error).__name__)

    def error_offset(self, error: BaseException) -> int | None:
        """Where in the statement the error is (1-based character), where the engine says."""
        return None

    def cannot_connect(self, error: BaseException) -> ConnectError:
        """The error for a connection the driver refused: where, why, what to check."""
        reason = self.error_message(error).rstrip(" .")
        stop = "" if reason.endswith(("?", "!")) else "."
        source = f" (it came from {self.url.source})" if self.url.source else ""
        return ConnectError(f"Cannot connect to {self.url}: {reason}{stop} Check the URL"
                            f"{source} and that the server is running.", reason=reason,
                            retryable=not self.refused_for_good(error))

    def refused_for_good(self, error: BaseException) -> bool:
        """True when the server answered and said no (credentials, database name)."""
        return False

    def scrub(self, text: str) -> str:
        """Remove the password from a message, whatever the driver put in it."""
        password = self.url.password
        return text.replace(password, "***") if password else text

    def commits_implicitly(self, sql: str) -> bool:
        """True where the engine commits the open transaction around this statement."""
        return False

    # --- transactions -----------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: committed when the block ends, rolled back if it raises.

        The rollback never hides the error that caused it (the connection may be
        gone by then).
        """
        self.begin()
        try:
            yield
            self.commit()  # inside: a COMMIT that fails (a deferred constraint) rolls back
        except BaseException:
            with contextlib.suppress(Exception):
                self.rollback()
            raise

    # How a transaction begins and ends; engines override these, transaction() uses them.
    def begin(self) -> None:
        self.query("BEGIN")

    def commit(self) -> None:
        self.query("COMMIT")

    def rollback(self) -> None:
        self.query("ROLLBACK")

    @abc.abstractmethod
    def migration_lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the lock that makes concurrent runs apply each version once."""

    def wait_for_lock(self, try_once: Callable[[float], bool],
                      holder: Callable[[], tuple[str, str]]) -> None:
        """Call ``try_once(seconds)`` until it takes the lock; LockTimeoutError after
        lock_timeout.

        ``try_once`` may block for up to ``seconds`` (MySQL's GET_LOCK wakes the moment
        the lock is free) or return at once (then the loop sleeps between attempts).
        ``holder`` gives who holds the lock and what to do about it (the command that
        ends that session, where the engine has one).
        After a second of waiting, and every ten seconds after, ``notify`` hears who.
        """
        started = time.monotonic()
        deadline, notice = started + self.lock_timeout, started + 1.0
        attempt = 0
        while True:
            now = time.monotonic()
            step = _POLL_SECONDS[min(attempt, len(_POLL_SECONDS) - 1)]
            if try_once(max(0.0, min(deadline, notice) - now)):
                return
            now = time.monotonic()
            if now >= deadline:
                raise self.lock_timeout_error(*holder())
            if now >= notice:
                if self.notify is not None:
                    self.notify(f"waiting for the migration lock on {self.url} (up to "
                                f"{self.lock_timeout:g} s): it is held by {holder()[0]}")
                notice = now + 10.0
            else:
                time.sleep(min(step, max(0.0, min(deadline, notice) - now)))
            attempt += 1

    def lock_timeout_error(self, who: str, advice: str) -> LockTimeoutError:
        """The error of a run that waited lock_timeout for the lock ``who`` holds."""
        return LockTimeoutError(
            f"Timed out after {self.lock_timeout:g} s waiting for the migration lock on "
            f"{self.url} (table {self.table}): it is held by {who}. Another migration is "
            f"probably running; wait for it, or raise --lock-timeout. {advice}")

    # --- the tracking table -----------------------------------------------------------

    def quote(self, identifier: str) -> str:
        """Quote a validated identifier (validation happens in config.parse_table_name)."""
        return f'"{identifier}"'

    @property
    def table_sql(self) -> str:
        parts = [self.table.schema, self.table.name] if self.table.schema else [self.table.name]
        return ".".join(self.quote(part) for part in parts if part)

    @abc.abstractmethod
    def table_exists(self) -> bool:
        """True when the tracking table exists."""

    def ensure_table(self) -> None:
        """Create the tracking table if it does not exist (Sibila's exact columns)."""
        self.query(
            f"CREATE TABLE IF NOT EXISTS {self.table_sql} ("
            f"version {self.version_type} PRIMARY KEY, description TEXT, "
            "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, checksum TEXT)"
        )

    def read_applied(self) -> list[AppliedRow]:
        """Every row of the tracking table (none when it does not exist)."""
        return self.select_applied() if self.table_exists() else []

    def select_applied(self) -> list[AppliedRow]:
        """Every row of the tracking table, which must exist."""
        rows = self.query("SELECT version, description, applied_at, checksum "
                          f"FROM {self.table_sql}")
        return [
            AppliedRow(str(version), description, None if at is None else str(at), checksum)
            for version, description, at, checksum in rows
        ]

    def is_recorded(self, version: str) -> bool:
        p = self.placeholder
        return bool(self.query(f"SELECT 1 FROM {self.table_sql} WHERE version = {p}", [version]))

    def record(self, version: str, description: str, checksum: str | None) -> None:
        p = self.placeholder
        self.query(f"INSERT INTO {self.table_sql} (version, description, checksum) "
                   f"VALUES ({p}, {p}, {p})", [version, description, checksum])

    def unrecord(self, version: str) -> None:
        self.query(f"DELETE FROM {self.table_sql} WHERE version = {self.placeholder}", [version])

    def set_checksum(self, version: str, checksum: str) -> None:
        p = self.placeholder
        self.query(f"UPDATE {self.table_sql} SET checksum = {p} WHERE version = {p}",
                   [checksum, version])
