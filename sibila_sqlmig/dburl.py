"""Database URLs: parsing, and keeping the password out of every printed form.

A ``DatabaseURL`` shows ``***`` for its password in ``str``, ``repr`` and
``redacted()``; it is no tuple (nothing to unpack or index), has no
``__dict__``, cannot be turned into JSON, and refuses to be pickled while it
holds a password. Only the ``password`` property gives the text, for the
backends that connect.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self, SupportsIndex
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import ConfigError

ENV_DATABASE = "SIBILA_SQLMIG_DATABASE"

_SCHEMES = {
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
_NO_PICKLE = ("A database URL with a password is not pickled, so that the password cannot "
              "end up in a file, a queue or a cache. Pass the URL text to the other process "
              f"(for example in ${ENV_DATABASE}) and parse it there.")
# Query parameters whose values are secrets (libpq's): shown as ***, never pickled.
# ("password" is moved into the password field by parse_database_url.)
_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})


class _Secret:
    """A password held so that no generic tool can show it: every printed form is
    ``***``, ``json.dumps`` cannot serialise it, and pickling it is refused."""

    __slots__ = ("_value",)  # no __dict__, so vars() has nothing to show
    _value: str

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The plain password, for the code that connects."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        raise TypeError(_NO_PICKLE)

    # Immutable, so a copy can be the object itself (as for str); copying then never
    # goes through __reduce_ex__, which refuses.
    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self


class DatabaseURL:
    """A parsed database URL. No printed, serialised or pickled form shows the password.

    Not a tuple (no indexing, unpacking or ``_asdict``) and without ``__dict__``:
    the password is held in a ``_Secret`` and only the ``password`` property returns
    it as text, for the backends that connect.
    """

    __slots__ = ("_password", "database", "dialect", "host", "path", "port", "query",
                 "source", "user")
    dialect: str  # "sqlite", "postgresql" or "mysql"
    path: str  # SQLite: file path or ":memory:"
    host: str
    port: int | None
    user: str
    _password: _Secret
    database: str
    query: tuple[tuple[str, str], ...]
    source: str  # where the URL came from, for error messages

    def __init__(self, dialect: str, path: str = "", host: str = "", port: int | None = None,
                 user: str = "", password: str = "", database: str = "",
                 query: tuple[tuple[str, str], ...] = (), source: str = "") -> None:
        """The same parameters, in the same order, as the former NamedTuple."""
        values = {"dialect": dialect, "path": path, "host": host, "port": port, "user": user,
                  "_password": _Secret(password), "database": database,
                  "query": tuple(query), "source": source}
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def password(self) -> str:
        """The plain password ("" if none): only for passing to a driver."""
        return self._password.reveal()

    def identity(self) -> tuple[str, ...]:
        """What makes two URLs the same database however spelled: a SQLite file's real
        path; a server's host, port (the default written or not), database and
        options (a PostgreSQL schema per tenant)."""
        if self.dialect == "sqlite":
            import os

            return ("sqlite", self.path if self.path == ":memory:"
                    else os.path.realpath(self.path))
        default_port = {"postgresql": 5432, "mysql": 3306}.get(self.dialect, 0)
        return (self.dialect, self.host.lower() or "localhost",
                str(self.port or default_port), self.database,
                dict(self.query).get("options", ""))

    def redacted(self) -> str:
        """The URL for display, with any password replaced by ``***``."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.path}"
        auth = self.user + (":***" if self.password else "")
        host = self.host + (f":{self.port}" if self.port else "")
        query = "&".join(f"{key}={'***' if key in _SECRET_QUERY_KEYS else value}"
                         for key, value in self.query)
        return f"{self.dialect}://{auth}{'@' if auth else ''}{host}/{self.database}" + (
            f"?{query}" if query else ""
        )

    def __str__(self) -> str:
        return self.redacted()

    def __repr__(self) -> str:
        return f"DatabaseURL({self.redacted()!r})"  # never the password

    def _key(self) -> tuple[Any, ...]:
        return (self.dialect, self.path, self.host, self.port, self.user, self._password,
                self.database, self.query, self.source)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DatabaseURL):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"DatabaseURL is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"DatabaseURL is immutable; cannot delete {name!r}")

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        # Without a password there is nothing to protect (SQLite URLs, for example, can
        # still go to a worker process); with one, refuse rather than write it out.
        if self.password or any(key in _SECRET_QUERY_KEYS for key, _ in self.query):
            raise TypeError(_NO_PICKLE)
        return (DatabaseURL, (self.dialect, self.path, self.host, self.port, self.user, "",
                              self.database, self.query, self.source))

    def __copy__(self) -> Self:
        return self  # immutable, as str and tuple

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self


def parse_database_url(text: str, *, base_dir: Path, source: str = "") -> DatabaseURL:
    """Parse a database URL or a bare SQLite path; relative SQLite paths join ``base_dir``."""
    origin = f" (from {source})" if source else ""
    if "://" not in text:
        if not text.strip():
            raise ConfigError(f"The database URL{origin} is empty. Give a URL such as "
                              "sqlite:///sibila.db or postgresql://user@host/db.")
        return DatabaseURL("sqlite", path=_sqlite_path(text, base_dir), source=source)
    scheme = text.split("://", 1)[0].lower()
    dialect = _SCHEMES.get(scheme)
    if dialect is None:
        raise ConfigError(
            f"Unknown database URL scheme '{scheme}'{origin}. Use sqlite:///file.db, "
            "postgresql://user:pass@host:5432/db or mysql://user:pass@host:3306/db."
        )
    if dialect == "sqlite":
        # sqlite:///relative.db -> "relative.db"; sqlite:////abs.db -> "/abs.db"
        rest = text.split("://", 1)[1]
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(f"Invalid SQLite URL{origin}: write sqlite:///relative.db "
                              "or sqlite:////absolute/path.db.")
        return DatabaseURL("sqlite", path=_sqlite_path(unquote(rest[1:]), base_dir),
                           source=source)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        # urlsplit's own message quotes the text it failed on, which may be part of a
        # password holding "/", "#" or "?": never echo it.
        raise ConfigError(f"Invalid database URL{origin}: the port is not a number, or the "
                          "password holds '/', '#' or '?'; write those as %2F, %23 and %3F."
                          ) from None
    database = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not database:
        raise ConfigError(f"The database URL{origin} needs a host and a database name: "
                          f"{dialect}://user:pass@host:port/dbname.")
    # libpq accepts ?password=...; held in the query it would be shown by url.query and
    # clash with the driver's password= argument, so it becomes the password field.
    query = parse_qsl(parts.query)
    passwords = [value for key, value in query if key == "password"]
    if parts.password:
        passwords.insert(0, unquote(parts.password))
    if len(passwords) > 1:
        raise ConfigError(f"The database URL{origin} gives the password more than once "
                          "(user:password@ and ?password=); give it once.")
    return DatabaseURL(
        dialect,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or ""),
        password=passwords[0] if passwords else "",
        database=database,
        query=tuple((key, value) for key, value in query if key != "password"),
        source=source,
    )


def _sqlite_path(path: str, base_dir: Path) -> str:
    if path == ":memory:" or os.path.isabs(path):
        return path
    return str(base_dir / path)
