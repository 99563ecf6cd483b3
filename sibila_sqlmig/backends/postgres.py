"""PostgreSQL through psycopg 3 (the ``postgres`` extra).

The lock is a session-level advisory lock taken on a dedicated connection
that never opens a transaction, polled with ``pg_try_advisory_lock`` until
the lock timeout. Because that connection is idle, ``CREATE INDEX
CONCURRENTLY`` in a ``transaction: false`` file never waits for it; because
it is a session lock, a killed process releases it when its connection
drops. Statements go through libpq's extended protocol, which refuses a
string with two statements, so a mis-split can never run unnoticed.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import TableName
from ..dburl import DatabaseURL
from ..errors import ConfigError, DriverMissingError
from ..model import Header
from .base import JOURNAL_COLUMNS, Backend

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..journal import JournalRecord

try:
    import psycopg
    from psycopg import pq
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]

APPLICATION_NAME = "sibila-sqlmig"
_ENDS = "If that process is stuck, `{};` ends it and frees the lock."
# TCP keepalives on both ends, so that a vanished client (power loss, a partition) or a
# vanished server is noticed within about a minute instead of two hours. The URL may
# override each (?keepalives_idle=..., ?tcp_user_timeout=...; README: Running in production).
CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                     "keepalives_count": 3, "tcp_user_timeout": 60_000}
SERVER_KEEPALIVES = (b"SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; "
                     b"SET tcp_keepalives_count = 3")


_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


def search_path_schemas(text: str) -> list[str]:
    """The schema names of a search_path setting: ``"$user", public`` -> [$user, public];
    unquoted names folded to lower case, as the server does."""
    names = []
    for part in re.findall(r'(?:"(?:[^"]|"")*"|[^,])+', text):
        part = part.strip()
        if part.startswith('"') and part.endswith('"') and len(part) > 1:
            names.append(part[1:-1].replace('""', '"'))
        elif part:
            names.append(part.lower())
    return names


def tenant_schema(url: DatabaseURL) -> str | None:
    """A schema per tenant: the first schema of the search_path that the URL's
    ``options`` set (``options=-csearch_path=tenant_7``), unless it is public; None
    when the URL sets no search_path (the role's or the server's applies)."""
    options = dict(url.query).get("options", "")
    tokens = re.split(r"(?<!\\)\s+", options.strip())
    path = None
    for index, token in enumerate(tokens):  # libpq's -c name=value or --name=value
        setting = tokens[index + 1] if token == "-c" and index + 1 < len(tokens) else \
            token[2:] if token.startswith(("-c", "--")) else ""
        name, _, value = setting.partition("=")
        if name.strip().lower().replace("-", "_") == "search_path":
            path = value.replace("\\ ", " ")
    schemas = [name for name in search_path_schemas(path or "") if name != "$user"]
    if not schemas or schemas[0] == "public":
        return None
    if not _SCHEMA_NAME.fullmatch(schemas[0]):
        raise ConfigError(f"The database URL {url} sets search_path to the schema "
                          f"{schemas[0]!r}: a schema per tenant needs a name of letters, "
                          "digits and underscores (at most 63).")
    return schemas[0]


class PostgresBackend(Backend):
    dialect = "postgresql"
    journal_time_type = "TIMESTAMPTZ"

    def __init__(self, url: DatabaseURL, table: TableName, lock_timeout: float) -> None:
        # A schema per tenant: the tracking table, journal and lock table live in the
        # tenant's schema, named explicitly, so that they never land in another schema
        # of the search_path (public) while the tenant's does not exist yet.
        tenant = None if table.schema else tenant_schema(url)
        super().__init__(url, TableName(table.name, tenant) if tenant else table,
                         lock_timeout)

    _connection: Any = None

    def _connect(self) -> Any:
        if psycopg is None:
            raise DriverMissingError(
                "PostgreSQL needs the psycopg driver: pip install 'sibila-sqlmig[postgres]'")
        url = self.url
        options: dict[str, Any] = {"connect_timeout": 10, "application_name": APPLICATION_NAME,
                                   **CLIENT_KEEPALIVES}
        options.update(dict(url.query))
        # Not a libpq parameter but psycopg's: automatic prepared statements are off by
        # default, because a pooler in transaction mode (PgBouncer before 1.21) runs the
        # next statement on another server connection, where "_pg3_0" does not exist.
        threshold = options.pop("prepare_threshold", "none")
        try:
            prepare_threshold = None if str(threshold).lower() in ("none", "") \
                else int(threshold)
        except ValueError:
            raise ConfigError(f"The database URL {url} gives prepare_threshold={threshold!r}; "
                              "give a number or none.") from None
        given: dict[str, Any] = {"host": url.host, "dbname": url.database, "user": url.user,
                                 "port": url.port}
        twice = sorted(key for key, value in given.items() if value and key in options)
        if twice:
            raise ConfigError(f"The database URL {url} gives {', '.join(twice)} as a query "
                              "parameter too; write it once, in the URL itself "
                              "(postgresql://user@host:port/dbname).")
        try:
            # The URL's parts, unless the query gives one the URL left out (?port=...).
            parts: dict[str, Any] = {"host": url.host, "port": url.port or 5432,
                                     "user": url.user or None, "dbname": url.database}
            parts.update(options)
            connection = psycopg.connect(password=url.password or None, autocommit=True,
                                         prepare_threshold=prepare_threshold, **parts)
        except psycopg.Error as error:
            raise self.cannot_connect(error) from None
        # A PostgreSQL-compatible server without these settings still migrates.
        with contextlib.suppress(psycopg.Error):
            self._check_result(connection, connection.pgconn.exec_(SERVER_KEEPALIVES))
        return connection

    def connect(self, *, create: bool) -> bool:
        if self._connection is not None:
            return True
        self._connection = self._connect()
        try:
            self.connected(self._connection)
        except BaseException:
            self.close()
            raise
        if self._connection.info.server_version >= 140000:
            # If this process is killed mid-statement, the server notices within a second
            # and rolls the file back, instead of finishing a long statement for nobody.
            self.query("SET client_connection_check_interval = 1000")
        return True

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def execute(self, sql: str) -> None:
        self._check(self._connection.pgconn.exec_params(sql.encode(), []))

    # Transaction control straight through libpq: psycopg's cursor machinery costs
    # 40 us more per file than the round trip itself (0.4 s of 10,000 tiny files, W4).
    # A file's SET LOCAL timeouts travel with its BEGIN: no round trip of their own.
    _begin_sql = b"BEGIN"

    def begin(self) -> None:
        self._check(self._connection.pgconn.exec_(self._begin_sql))

    @contextlib.contextmanager
    def file_transaction(self, header: Header, *, path: Path, version: str,
                         direction: str) -> Iterator[None]:
        settings = _timeout_settings(*self.file_timeouts(header))
        self._begin_sql = b"; ".join([b"BEGIN", *(b"SET LOCAL " + s for s in settings)])
        try:
            with self.transaction():
                yield
        finally:
            self._begin_sql = b"BEGIN"

    @contextlib.contextmanager
    def file_session(self, header: Header) -> Iterator[None]:
        settings = _timeout_settings(*self.file_timeouts(header))
        if not settings:
            yield
            return
        self._check(self._connection.pgconn.exec_(b"; ".join(b"SET " + s for s in settings)))
        try:
            yield
        finally:  # back to the session's own values (server, role, URL options)
            names = [s.split(b" ", 1)[0] for s in settings]
            with contextlib.suppress(Exception):
                self._check(self._connection.pgconn.exec_(
                    b"; ".join(b"RESET " + name for name in names)))

    def is_lock_failure(self, error: BaseException) -> bool:
        # lock_not_available (lock_timeout), deadlock_detected
        return getattr(getattr(error, "diag", None), "sqlstate", None) in ("55P03", "40P01")

    def lock_holders(self) -> str:
        rows = self.query(
            "SELECT a.pid, a.application_name, a.client_addr::text, a.state, "
            "a.xact_start, string_agg(DISTINCT l.mode || ' on ' || c.relname, ', ') "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid() "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND c.relnamespace <> 'pg_catalog'::regnamespace "
            "GROUP BY a.pid, a.application_name, a.client_addr, a.state, a.xact_start "
            "ORDER BY bool_or(l.mode = 'AccessExclusiveLock') DESC, a.xact_start LIMIT 3")
        if not rows:
            return ""
        # Another role's session shows no client, state or start to a non-superuser.
        held = "; ".join(
            f"pid {pid} (application '{app or '?'}', client {client or '?'}, "
            f"{state or 'state hidden'}"
            f"{f', transaction since {started:%Y-%m-%d %H:%M:%S}' if started else ''}) "
            f"holds {locks}"
            for pid, app, client, state, started, locks in rows)
        ends = " or ".join(f"`SELECT pg_terminate_backend({row[0]});`" for row in rows)
        return f"Sessions holding table locks now: {held}. {ends} ends one."

    def commit(self) -> None:
        self._check(self._connection.pgconn.exec_(b"COMMIT"))

    def rollback(self) -> None:
        self._check(self._connection.pgconn.exec_(b"ROLLBACK"))

    def _check(self, result: Any) -> None:
        """Raise the driver's error for a failed libpq result."""
        self._check_result(self._connection, result)

    @staticmethod
    def _check_result(connection: Any, result: Any) -> None:
        if result.status in (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.BAD_RESPONSE,
                             pq.ExecStatus.NONFATAL_ERROR):
            raise psycopg.errors.error_from_result(result, encoding=connection.info.encoding)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection.cursor() as cursor:
            cursor.execute(sql, tuple(params) or None)
            return list(cursor.fetchall()) if cursor.description else []

    def is_driver_error(self, error: BaseException) -> bool:
        return psycopg is not None and isinstance(error, psycopg.Error)

    def error_message(self, error: BaseException) -> str:
        diag: Any = getattr(error, "diag", None)
        primary = getattr(diag, "message_primary", None)
        if not primary:
            return self.scrub(super().error_message(error))
        parts = [primary]
        for label, value in (("detail", diag.message_detail), ("hint", diag.message_hint)):
            if value:
                parts.append(f"{label}: {value}")
        code = diag.sqlstate
        return self.scrub(" ".join(parts) + (f" (SQLSTATE {code})" if code else ""))

    def refused_for_good(self, error: BaseException) -> bool:
        # Authentication failed, or no such database: waiting will not change that.
        # psycopg gives no SQLSTATE for a failed connection, so its text is read too (a
        # server in another language only means waiting out --wait, as before).
        if getattr(getattr(error, "diag", None), "sqlstate", None) in ("28P01", "28000",
                                                                        "3D000"):
            return True
        text = str(error)
        return any(phrase in text for phrase in (
            "does not exist", "authentication failed", "no pg_hba.conf entry"))

    def error_offset(self, error: BaseException) -> int | None:
        diag = getattr(error, "diag", None)
        position = getattr(diag, "statement_position", None)
        return int(position) if position else None

    def quote(self, identifier: str) -> str:
        return f'"{identifier}"'

    def relation_exists(self, table: TableName) -> bool:
        rows = self.query("SELECT to_regclass(%s) IS NOT NULL", [self.qualified(table)])
        return bool(rows[0][0])

    def bookkeep(self, row: JournalRecord, *, row_version: str) -> str | None:
        # One round trip, as the tracking row alone took: a savepoint, then one statement
        # that writes both rows (values rendered by psycopg's own literal quoting, as its
        # client-side binding does). Refused, it is undone to the savepoint and the
        # tracking row is written alone: an error then is the tracking row's.
        try:
            sql = self._bookkeeping_sql(row, row_version).encode(self._connection.info.encoding)
        except (psycopg.Error, UnicodeError):  # a value psycopg cannot render (a NUL)
            return super().bookkeep(row, row_version=row_version)
        result = self._connection.pgconn.exec_(sql)
        try:
            self._check(result)
            return None
        except psycopg.Error as error:
            refused = self.error_message(error)
        self._check(self._connection.pgconn.exec_(
            b"ROLLBACK TO SAVEPOINT sibila_sqlmig_journal"))
        if row.direction == "up":
            self.record(row.version, row.description, row.checksum)
        else:
            self.unrecord(row_version)
        return refused

    def _bookkeeping_sql(self, row: JournalRecord, row_version: str) -> str:
        escape = pq.Escaping(self._connection.pgconn)
        encoding = self._connection.info.encoding

        def literal(value: Any) -> str:
            # libpq's own quoting (PQescapeLiteral) for text; numbers and flags as SQL.
            if value is None:
                return "NULL"
            if isinstance(value, bool):
                return "TRUE" if value else "FALSE"
            if isinstance(value, (int, float)):
                return repr(value)
            if isinstance(value, datetime.datetime):
                return literal(value.isoformat()) + "::timestamptz"
            if "\x00" in value:
                raise UnicodeError("PostgreSQL text cannot hold NUL")
            return bytes(escape.escape_literal(value.encode(encoding))).decode(encoding)

        if row.direction == "up":
            tracking = (f"INSERT INTO {self.table_sql} (version, description, checksum) "
                        f"VALUES ({literal(row.version)}, {literal(row.description)}, "
                        f"{literal(row.checksum)})")
        else:
            tracking = f"DELETE FROM {self.table_sql} WHERE version = {literal(row_version)}"
        values = ", ".join(literal(value) for value in self.journal_values(row))
        return (f"SAVEPOINT sibila_sqlmig_journal; WITH tracked AS ({tracking} RETURNING 1) "
                f"INSERT INTO {self.qualified(self.table.journal)} ({JOURNAL_COLUMNS}) "
                f"VALUES ({values})")

    def try_journal(self, row: JournalRecord) -> str | None:
        # A failed statement aborts a PostgreSQL transaction: the row gets a savepoint of
        # its own (one round trip; it is released with the COMMIT).
        self._check(self._connection.pgconn.exec_(b"SAVEPOINT sibila_sqlmig_journal"))
        try:
            self.journal(row)
        except Exception as error:
            if not self.is_driver_error(error):
                raise
            self._check(self._connection.pgconn.exec_(
                b"ROLLBACK TO SAVEPOINT sibila_sqlmig_journal"))
            return self.error_message(error)
        return None

    def journal_time(self, moment: datetime.datetime) -> object:
        return moment  # an aware datetime: psycopg sends it as timestamptz

    def ensure_table(self) -> None:
        if self.table.schema:  # a schema per tenant, too: the first run creates it
            self.query(f"CREATE SCHEMA IF NOT EXISTS {self.quote(self.table.schema)}")
        super().ensure_table()

    @property
    def lock_key(self) -> int:
        """A signed 64-bit key derived from the table's name: two tables, two locks (a
        tenant's table is qualified by its schema: one lock per tenant)."""
        digest = hashlib.sha256(f"sibila_sqlmig:{self.table}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    @contextlib.contextmanager
    def session_lock(self) -> Iterator[None]:
        holder = self._connect()
        try:
            from ..tablelock import detect_transaction_pooling

            if detect_transaction_pooling(holder, self._connection):
                raise ConfigError(
                    f"{self.url} goes through a pooler in transaction mode (PgBouncer), "
                    "where the advisory migration lock is unsafe: it stays with one server "
                    "session while the migration runs on others, and the pooler lends that "
                    "session to other clients. Use --lock table (or 'lock: table' in "
                    "sibila_sqlmig.yaml), or connect to the server directly.")
            self.wait_for_lock(  # pg_try_advisory_lock answers at once; the loop polls
                lambda _: bool(holder.execute("SELECT pg_try_advisory_lock(%s)",
                                              [self.lock_key]).fetchone()[0]),
                lambda: self._holder(holder))
            yield
        finally:
            with contextlib.suppress(Exception):
                holder.close()  # closing the session releases the advisory lock

    def _holder(self, connection: Any) -> tuple[str, str]:
        """Who holds the advisory lock, and the command that ends that session."""
        key = self.lock_key
        row = connection.execute(
            "SELECT a.pid, a.application_name, a.client_addr::text, a.backend_start "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = ((%s >> 32) & 4294967295)::oid "
            "AND l.objid = (%s & 4294967295)::oid LIMIT 1", [key, key]).fetchone()
        if row is None:
            return "another session", _ENDS.format("SELECT pg_terminate_backend(pid)")
        return (f"PostgreSQL backend pid {row[0]} (application '{row[1] or '?'}', client "
                f"{row[2] or 'local socket'}, connected {row[3]:%Y-%m-%d %H:%M:%S})",
                _ENDS.format(f"SELECT pg_terminate_backend({row[0]})"))

    # --- the catalog (sibila_sqlmig/catalog/postgres.py) ---------------------------------

    def catalog(self) -> Catalog:
        from ..catalog.postgres import read_catalog

        return read_catalog(self, self.tool_tables)

    def dump_schema(self) -> str:
        from ..catalog.postgres import dump_schema

        return dump_schema(self, (self.table.journal, self.table.lock))

    def go_fast(self) -> None:
        self.query("SET synchronous_commit = off")

    def scratch_database(self) -> contextlib.AbstractContextManager[DatabaseURL]:
        from ..catalog.postgres import scratch_database

        return scratch_database(self)

    def dump_table_sql(self) -> str:
        # pg_dump empties search_path: the INSERTs name the table's schema.
        if self.table.schema:
            return self.table_sql
        schema = self.query("SELECT current_schema()")[0][0]
        return f"{self.quote(schema)}.{self.quote(self.table.name)}"



def _timeout_settings(lock: float | None, statement: float | None) -> list[bytes]:
    """``name = 'Nms'`` for each timeout that is set (0: none), for SET or SET LOCAL."""
    # At least 1 ms: 0 means "no limit" to PostgreSQL, never what a tiny value meant.
    return [f"{name} = '{max(1, round(seconds * 1000)) if seconds else 0}ms'".encode()
            for name, seconds in (("lock_timeout", lock), ("statement_timeout", statement))
            if seconds is not None]
