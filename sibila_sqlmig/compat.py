"""Sibila's calls, kept working: run_migrations, migration_status, MigrationManager, tables.

These wrap the typed API in the shapes Sibila's application code expects:
booleans and dicts instead of exceptions and result objects. Failures are
logged (logger ``sibila_sqlmig``), never printed.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from .api import Migrator
from .config import load_settings
from .errors import ConfigError, SqlmigError
from .model import State, StatusReport

logger = logging.getLogger("sibila_sqlmig")

# Sibila's legacy start-up schema, exactly as its tables() routine made it.
LEGACY_TABLES = (
    "CREATE TABLE IF NOT EXISTS documents_info ("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT, name TEXT, size INTEGER, "
    "pages INTEGER, mimetype TEXT)",
    "CREATE TABLE IF NOT EXISTS paragraphs_metadatas ("
    "uuid TEXT PRIMARY KEY, path TEXT, page INTEGER, name TEXT, source TEXT, "
    "letters INTEGER, content TEXT, distance REAL, mimetype TEXT, size INTEGER, "
    "phrases INTEGER, lines INTEGER, chunks INTEGER)",
)


def _migrator(database: str | None, migrations_dir: str | Path | None,
              options: dict[str, Any]) -> Migrator:
    return Migrator(load_settings(database=database, migrations=migrations_dir, **options))


def run_migrations(database: str | None = None, migrations_dir: str | Path | None = None,
                   **options: Any) -> bool:
    """Apply every pending migration; True on success, False (and a logged error) if not.

    Safe to call from every worker at start-up: the migration lock makes each
    version apply exactly once.
    """
    try:
        _migrator(database, migrations_dir, options).migrate()  # logs each version it applies
    except SqlmigError as error:
        logger.error("migrations failed: %s", error)
        return False
    return True


def _status_dict(report: StatusReport, database: str) -> dict[str, Any]:
    recorded = [entry.version for entry in report.recorded]
    pending = [entry.version for entry in report.having(State.PENDING)]
    return {
        "database": database,
        "applied": recorded,
        "pending": pending,
        "edited": [entry.version for entry in report.having(State.EDITED)],
        "missing": [entry.version for entry in report.having(State.MISSING)],
        "unverified": [entry.version for entry in report.having(State.UNVERIFIED)],
        "total_applied": len(recorded),
        "total_pending": len(pending),
        "current_version": recorded[-1] if recorded else None,
    }


def migration_status(database: str | None = None, migrations_dir: str | Path | None = None,
                     **options: Any) -> dict[str, Any]:
    """A dict with applied, pending, edited, missing, unverified, total_applied,
    total_pending and current_version. Raises SqlmigError when it cannot tell."""
    result = _migrator(database, migrations_dir, options).status()
    return _status_dict(result.report, result.database)


class MigrationManager:
    """Sibila's migration manager, on top of Migrator; same configuration lookup as the CLI."""

    def __init__(self, database: str | None = None, migrations_dir: str | Path | None = None,
                 **options: Any) -> None:
        self.migrator = _migrator(database, migrations_dir, options)

    def get_applied_migrations(self) -> list[str]:
        """Applied versions, oldest first."""
        return [entry.version for entry in self.migrator.status().report.recorded]

    def get_pending_migrations(self) -> list[str]:
        """Versions on disk that are not applied, oldest first."""
        return [migration.version for migration in self.migrator.pending()]

    def get_migration_status(self) -> dict[str, Any]:
        """The same dict as migration_status()."""
        result = self.migrator.status()
        return _status_dict(result.report, result.database)

    def run_migrations(self) -> bool:
        """Apply every pending version; False (logged) on failure."""
        try:
            self.migrator.migrate()
        except SqlmigError as error:
            logger.error("migrations failed: %s", error)
            return False
        return True

    def apply_migration(self, version: str) -> bool:
        """Apply pending versions up to and including ``version``; False on failure."""
        try:
            self.migrator.migrate(to=version)
        except SqlmigError as error:
            logger.error("applying %s failed: %s", version, error)
            return False
        return True

    def rollback_migration(self, version: str) -> bool:
        """Roll back ``version``, which must be the newest applied one; False on failure."""
        try:
            applied = self.get_applied_migrations()
            if not applied or int(applied[-1]) != int(version):
                logger.error("cannot roll back %s: only the newest applied version (%s) can be "
                             "rolled back", version, applied[-1] if applied else "none")
                return False
            self.migrator.rollback(steps=1)
        except (SqlmigError, ValueError) as error:
            logger.error("rolling back %s failed: %s", version, error)
            return False
        return True

    def create_migration(self, description: str) -> Path:
        """Write a new version folder and return its path."""
        return self.migrator.create(description)

    def verify(self) -> bool:
        """False when an applied version was edited or is missing on disk."""
        return self.migrator.verify().ok


def tables(database: str | None = None, **options: Any) -> None:
    """Sibila's legacy start-up call: create documents_info and paragraphs_metadatas.

    It makes no tracking table and no indexes, as before; ``migrate`` adopts a
    database made this way as it is.
    """
    settings = load_settings(database=database, **options)
    if settings.database.dialect != "sqlite":
        raise ConfigError("tables() is Sibila's SQLite start-up routine; use migrate for "
                          f"{settings.database.dialect}.")
    path = settings.database.path
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in LEGACY_TABLES:
            connection.execute(statement)
    finally:
        connection.close()
