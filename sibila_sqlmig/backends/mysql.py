"""MySQL and MariaDB through PyMySQL (the ``mysql`` extra).

The lock is ``GET_LOCK``, held by the migrating connection's session: it
survives the implicit commits of DDL and is released when the connection
drops, so a killed process never leaves it behind. These engines commit
DDL implicitly; the runner reports which statements of a failed file stayed.
PyMySQL is used without CLIENT.MULTI_STATEMENTS, so a string with two
statements is refused by the server.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..config import TableName
from ..errors import ConfigError, DriverMissingError
from ..splitting import head_words
from .base import Backend

try:
    import pymysql
except ImportError:  # pragma: no cover - depends on the installed extras
    pymysql = None

# Query parameters a MySQL URL may carry, and how each becomes a PyMySQL argument.
_URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "charset": str, "connect_timeout": int, "unix_socket": str, "ssl_ca": str,
    "ssl_cert": str, "ssl_key": str, "ssl_disabled": lambda value: value in ("1", "true"),
}
_ENDS = "If that process is stuck, `{};` ends it and frees the lock."
# MySQL and MariaDB commit implicitly before and after statements starting so.
_IMPLICIT_COMMIT = frozenset([
    "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE", "GRANT", "REVOKE", "LOCK", "UNLOCK",
    "INSTALL", "UNINSTALL", "ANALYZE", "OPTIMIZE", "REPAIR", "FLUSH",
])


class MySQLBackend(Backend):
    dialect = "mysql"
    version_type = "VARCHAR(255)"
    journal_id_type = "BIGINT AUTO_INCREMENT PRIMARY KEY"
    journal_text_type = "MEDIUMTEXT"  # TEXT holds 64 KiB; the journal keeps up to 1 MiB
    journal_time_type = "DATETIME(6)"
    # utf8mb4 whatever the database's default: the SQL kept may hold any character.
    journal_table_options = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

    _connection: Any = None

    def connect(self, *, create: bool) -> bool:
        if self._connection is not None:
            return True
        if pymysql is None:
            raise DriverMissingError(
                "MySQL/MariaDB need the PyMySQL driver: pip install 'sibila-sqlmig[mysql]'")
        url = self.url
        options: dict[str, Any] = {"charset": "utf8mb4", "connect_timeout": 10}
        for key, value in url.query:
            if key not in _URL_OPTIONS:
                raise ConfigError(f"Unknown MySQL URL parameter {key!r}; supported: "
                                  f"{', '.join(_URL_OPTIONS)}.")
            options[key] = _URL_OPTIONS[key](value)
        try:
            self._connection = pymysql.connect(
                host=url.host, port=url.port or 3306, user=url.user or "root",
                password=url.password, database=url.database, autocommit=True, **options)
        except pymysql.err.MySQLError as error:
            raise self.cannot_connect(error) from None
        self.connected(self._connection)
        return True

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def execute(self, sql: str) -> None:
        with self._connection.cursor() as cursor:
            cursor.execute(sql)  # no arguments: PyMySQL leaves % alone
            while cursor.nextset():  # CALL may return several result sets
                pass

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection.cursor() as cursor:
            cursor.execute(sql, tuple(params) or None)
            return list(cursor.fetchall())

    def is_driver_error(self, error: BaseException) -> bool:
        return pymysql is not None and isinstance(error, pymysql.err.MySQLError)

    def error_message(self, error: BaseException) -> str:
        args: tuple[Any, ...] = getattr(error, "args", ())
        if len(args) == 2 and isinstance(args[0], int):
            return self.scrub(" ".join(f"{args[1]} (error {args[0]})".split()))
        return self.scrub(super().error_message(error))

    def refused_for_good(self, error: BaseException) -> bool:
        # Access denied, or no such database: waiting will not change that.
        args: tuple[Any, ...] = getattr(error, "args", ())
        return bool(args) and args[0] in (1044, 1045, 1049)

    def commits_implicitly(self, sql: str) -> bool:
        words = head_words(sql, 2)
        if words[1:] == ("TEMPORARY",):
            return False  # CREATE/DROP TEMPORARY TABLE stay inside the transaction
        return bool(words) and words[0] in _IMPLICIT_COMMIT

    def begin(self) -> None:
        # autocommit off for the file: the first statement opens the transaction, and
        # after a DDL's implicit commit the next one opens a new transaction instead of
        # committing on its own, so a failure still rolls back everything after the
        # last DDL. (One round trip: START TRANSACTION would add a second.)
        self._connection.autocommit(False)

    def commit(self) -> None:
        # Switching autocommit back on commits the open transaction (documented by
        # MySQL and MariaDB): the commit and the switch are one round trip.
        self._connection.autocommit(True)

    def rollback(self) -> None:
        self._connection.rollback()
        self._connection.autocommit(True)

    def quote(self, identifier: str) -> str:
        return f"`{identifier}`"

    def relation_exists(self, table: TableName) -> bool:
        rows = self.query("SELECT 1 FROM information_schema.tables WHERE table_schema = "
                          "DATABASE() AND table_name = %s", [table.name])
        return bool(rows)

    @property
    def lock_name(self) -> str:
        """At most 64 characters, derived from database and table: two tables, two locks."""
        digest = hashlib.sha256(f"{self.url.database}.{self.table}".encode()).hexdigest()
        return f"sibila_sqlmig:{digest[:40]}"

    @contextlib.contextmanager
    def session_lock(self) -> Iterator[None]:
        name = self.lock_name
        # GET_LOCK waits on the server and wakes the moment the lock is free; it is asked
        # for slices (up to the next notice), so that a waiting run can say who holds it.
        self.wait_for_lock(
            lambda seconds: self.query("SELECT GET_LOCK(%s, %s)",
                                       [name, round(seconds, 3)])[0][0] == 1,
            lambda: self._holder(name))
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                self.query("SELECT RELEASE_LOCK(%s)", [name])

    def _holder(self, name: str) -> tuple[str, str]:
        """Who holds the named lock, and the command that ends that connection."""
        holder = self.query("SELECT IS_USED_LOCK(%s)", [name])[0][0]
        if holder is None:
            return "another session", _ENDS.format("KILL <connection id>")
        rows = self.query("SELECT user, host, command, time FROM "
                          "information_schema.processlist WHERE id = %s", [holder])
        detail = (f" (user {rows[0][0]} from {rows[0][1]}, {rows[0][2]} for {rows[0][3]} s)"
                  if rows else "")
        return f"connection id {holder}{detail}", _ENDS.format(f"KILL {holder}")
