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
import math
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import TableName
from ..errors import ConfigError, DriverMissingError
from ..model import Header
from ..splitting import head_words
from .base import Backend

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..dburl import DatabaseURL

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
        _keep_alive(self._connection)
        try:
            self.connected(self._connection)
        except BaseException:
            self.close()
            raise
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
        return _error_code(error) in (1044, 1045, 1049)

    def commits_implicitly(self, sql: str) -> bool:
        words = head_words(sql, 2)
        if words[1:] == ("TEMPORARY",):
            return False  # CREATE/DROP TEMPORARY TABLE stay inside the transaction
        return bool(words) and words[0] in _IMPLICIT_COMMIT

    # Each file's timeouts are session variables; a file that sets none runs with the
    # values the session had, put back when a file's differ (one SET, only on change).
    _timeouts_now: tuple[float | None, float | None] = (None, None)
    _session_defaults: dict[str, Any] | None = None

    @contextlib.contextmanager
    def file_transaction(self, header: Header, *, path: Path, version: str,
                         direction: str) -> Iterator[None]:
        self._apply_timeouts(self.file_timeouts(header))
        with self.transaction():
            yield

    @contextlib.contextmanager
    def file_session(self, header: Header) -> Iterator[None]:
        self._apply_timeouts(self.file_timeouts(header))
        yield

    def _apply_timeouts(self, wanted: tuple[float | None, float | None]) -> None:
        if wanted == self._timeouts_now:
            return
        if self._session_defaults is None:
            names = ["innodb_lock_wait_timeout", "lock_wait_timeout", self._statement_variable]
            row = self.query("SELECT " + ", ".join(f"@@SESSION.{name}" for name in names))[0]
            self._session_defaults = dict(zip(names, row, strict=True))
        lock, statement = wanted
        values = dict(self._session_defaults)
        if lock is not None:  # whole seconds, at least 1: the engines take no less
            values["innodb_lock_wait_timeout"] = values["lock_wait_timeout"] = \
                max(1, math.ceil(lock)) if lock > 0 else 31536000
        if statement is not None:
            seconds = statement if self._statement_variable == "max_statement_time" \
                else round(statement * 1000)
            values[self._statement_variable] = seconds
        self.query("SET " + ", ".join(f"SESSION {name} = %s" for name in values),
                   list(values.values()))
        self._timeouts_now = wanted

    @property
    def _statement_variable(self) -> str:
        """MariaDB's max_statement_time (seconds, every statement) or MySQL's
        max_execution_time (milliseconds; MySQL applies it to SELECT only)."""
        return ("max_statement_time" if "mariadb" in self._connection.get_server_info().lower()
                else "max_execution_time")

    def is_lock_failure(self, error: BaseException) -> bool:
        return _error_code(error) in (1205, 1213)  # lock wait timeout, deadlock

    def lock_holders(self) -> str:
        rows = self.query(
            "SELECT t.trx_mysql_thread_id, p.user, p.host, t.trx_started, p.command, p.state "
            "FROM information_schema.innodb_trx t LEFT JOIN information_schema.processlist p "
            "ON p.id = t.trx_mysql_thread_id WHERE t.trx_mysql_thread_id <> CONNECTION_ID() "
            "ORDER BY t.trx_started LIMIT 3")
        if not rows:
            return ""
        held = "; ".join(f"connection {thread} (user {user} from {host}, {command or '?'}, "
                         f"transaction since {started})"
                         for thread, user, host, started, command, _ in rows)
        ends = " or ".join(f"`KILL {row[0]};`" for row in rows)
        return f"Open transactions now (they may hold the lock): {held}. {ends} ends one."

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

    # --- the catalog (sibila_sqlmig/catalog/mysql.py) ---------------------------------

    def catalog(self) -> Catalog:
        from ..catalog.mysql import read_catalog

        return read_catalog(self, self.tool_tables)

    def dump_schema(self) -> str:
        from ..catalog.mysql import dump_schema

        return dump_schema(self, (self.table.journal, self.table.lock))

    def scratch_database(self) -> contextlib.AbstractContextManager[DatabaseURL]:
        from ..catalog.mysql import scratch_database

        return scratch_database(self)

    def sql_literal(self, value: object) -> str:
        # MySQL reads a backslash in a string as an escape (unless NO_BACKSLASH_ESCAPES).
        if value is None:
            return "NULL"
        return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"



def _error_code(error: BaseException) -> object:
    """The server's error number of a PyMySQL error (its first argument), else None."""
    args: tuple[Any, ...] = getattr(error, "args", ())
    return args[0] if args else None


def _keep_alive(connection: Any) -> None:
    """TCP keepalives on the connection's socket (PyMySQL has no option for them), so
    that a vanished server is noticed within about a minute; the session's GET_LOCK
    dies with a vanished client when the server's own keepalive (the OS's) gives up."""
    sock = getattr(connection, "_sock", None)
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3),
                            ("TCP_USER_TIMEOUT", 60_000)):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
