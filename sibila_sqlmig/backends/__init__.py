"""Database backends, imported only when their URL is used."""

from __future__ import annotations

from ..config import Settings
from ..errors import ConfigError
from .base import Backend


def backend_for(settings: Settings) -> Backend:
    """A backend for the configured URL; drivers are imported here, not before."""
    dialect = settings.database.dialect
    if settings.table.schema and dialect != "postgresql":
        raise ConfigError(f"Table name {settings.table}: a schema-qualified name is only "
                          "supported on PostgreSQL.")
    backend_class: type[Backend]
    if dialect == "sqlite":
        from .sqlite import SQLiteBackend

        sqlite = SQLiteBackend(settings.database, settings.table, settings.lock_timeout)
        sqlite.enforce_foreign_keys = settings.sqlite_foreign_keys
        return _configured(sqlite, settings)
    if dialect == "postgresql":
        from .postgres import PostgresBackend

        backend_class = PostgresBackend
    elif dialect == "mysql":
        from .mysql import MySQLBackend

        backend_class = MySQLBackend
    else:  # parse_database_url only produces the three dialects above
        raise ConfigError(f"Unsupported database dialect {dialect!r}.")
    return _configured(backend_class(settings.database, settings.table, settings.lock_timeout),
                       settings)


def _configured(backend: Backend, settings: Settings) -> Backend:
    backend.lock_kind, backend.lock_lease = settings.lock_kind, settings.lock_lease
    backend.file_defaults = settings.file_defaults
    return backend


__all__ = ["Backend", "backend_for"]
