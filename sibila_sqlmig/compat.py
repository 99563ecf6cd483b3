"""Sibila's calls, kept working: run_migrations, migration_status, MigrationManager, tables.

These wrap the typed API in the shapes Sibila's application code expects:
booleans and dicts instead of exceptions and result objects. Failures are
logged (logger ``sibila_sqlmig``), never printed.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .api import Migrator, StatusResult
from .config import load_settings
from .errors import ConfigError, DatabaseError, SqlmigError
from .model import State

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


PathLike = str | os.PathLike[str]


OnConnect = Callable[[Any], None]


def _migrator(database: str | None, migrations: PathLike | None, migrations_dir: PathLike | None,
              config: PathLike | None, table: str | None,
              lock_timeout: float | None, on_connect: OnConnect | None = None,
              **more: Any) -> Migrator:
    """The Migrator of a Sibila call; ``migrations_dir`` is Sibila's name for ``migrations``;
    ``more``: Migrator's lock_wait, lock, backup and wait, as the call got them."""
    if migrations is not None and migrations_dir is not None:
        raise TypeError("give migrations= or migrations_dir= (its older name), not both")
    return Migrator(database=database, migrations=migrations if migrations is not None
                    else migrations_dir, config=config, table=table, lock_timeout=lock_timeout,
                    on_connect=on_connect, **more)


def run_migrations(database: str | None = None, migrations: PathLike | None = None, *,
                   migrations_dir: PathLike | None = None, config: PathLike | None = None,
                   table: str | None = None, lock_timeout: float | None = None,
                   on_connect: OnConnect | None = None, lock_wait: float | None = None,
                   lock: str | None = None, backup: bool | None = None,
                   wait: float | None = None) -> bool:
    """Apply every pending migration; True on success, False (and a logged error) if not.

    Safe to call from every worker at start-up: the migration lock makes each
    version apply exactly once. On a SQLite file, a backup is taken first when
    something will run (README: SQLite). The keywords are Migrator's
    (``migrations_dir`` is accepted for ``migrations``; ``on_connect`` is given the
    driver's connection, to register the functions a migration uses).
    """
    return _succeeds("migrations", lambda: _migrator(  # the run logs each version it applies
        database, migrations, migrations_dir, config, table, lock_timeout, on_connect,
        lock_wait=lock_wait, lock=lock, backup=backup, wait=wait).migrate())


def _succeeds(what: str, action: Callable[[], object]) -> bool:
    """Run ``action``: True, or False with the error logged, as Sibila's calls answer."""
    try:
        action()
    except SqlmigError as error:
        logger.error("%s failed: %s", what, error)
        if error.backup is not None:
            logger.error("the backup taken before this run is %s", error.backup)
        return False
    return True


def _status_dict(result: StatusResult) -> dict[str, Any]:
    """Sibila's status dict: its own keys, and this package's beside them."""
    report = result.report
    recorded = [entry.version for entry in report.recorded]
    pending = [entry.version for entry in report.having(State.PENDING)]
    edited = [entry.version for entry in report.having(State.EDITED)]
    missing = [entry.version for entry in report.having(State.MISSING)]
    return {
        "database": result.database,
        "applied": recorded,
        "pending": pending,
        "edited": edited,
        "missing": missing,
        "unverified": [entry.version for entry in report.having(State.UNVERIFIED)],
        "total_applied": len(recorded),
        "total_pending": len(pending),
        "current_version": recorded[-1] if recorded else None,
        # Sibila's own names for the same facts:
        "applied_migrations": recorded,
        "pending_migrations": pending,
        "schema_integrity": not edited and not missing,
        "database_ready": result.table_found,
    }


def migration_status(database: str | None = None, migrations: PathLike | None = None, *,
                     migrations_dir: PathLike | None = None, config: PathLike | None = None,
                     table: str | None = None, lock_timeout: float | None = None,
                     on_connect: OnConnect | None = None,
                     wait: float | None = None) -> dict[str, Any]:
    """A dict with applied, pending, edited, missing, unverified, total_applied,
    total_pending and current_version. Raises SqlmigError when it cannot tell."""
    return _status(_migrator(database, migrations, migrations_dir, config, table,
                             lock_timeout, on_connect, wait=wait))


def _status(migrator: Migrator) -> dict[str, Any]:
    result = migrator.status()
    return _status_dict(result)


class MigrationManager:
    """Sibila's migration manager, on top of Migrator; same configuration lookup as the CLI."""

    def __init__(self, database: str | None = None, migrations: PathLike | None = None, *,
                 migrations_dir: PathLike | None = None, config: PathLike | None = None,
                 table: str | None = None, lock_timeout: float | None = None,
                 on_connect: OnConnect | None = None, lock_wait: float | None = None,
                 lock: str | None = None, backup: bool | None = None,
                 wait: float | None = None) -> None:
        """The same keywords as run_migrations()."""
        self.migrator = _migrator(database, migrations, migrations_dir, config, table,
                                  lock_timeout, on_connect, lock_wait=lock_wait, lock=lock,
                                  backup=backup, wait=wait)
        settings = self.migrator.settings
        given = migrations if migrations is not None else migrations_dir
        #: The migrations folder as configured (as given, or relative to the working folder).
        self.migrations_path = str(given) if given is not None else _shown(
            settings.migrations_dir)
        #: The tracking table's name.
        self.migration_table = str(settings.table)

    def ensure_migration_table(self) -> bool:
        """Create the tracking table if it is missing; True once it exists."""
        return _succeeds("creating the tracking table", self.migrator.ensure_table)

    def migrate(self) -> bool:
        """Apply every pending version; False (logged) on failure."""
        return self.run_migrations()

    def status(self) -> dict[str, Any]:
        """The same dict as migration_status()."""
        return _status(self.migrator)

    def check_schema_integrity(self) -> bool:
        """True when no applied version was edited or is missing on disk."""
        return self.migrator.verify(allow_empty=True).ok

    def get_applied_migrations(self) -> list[str]:
        """Applied versions, oldest first."""
        return [entry.version for entry in self.migrator.status().report.recorded]

    def get_pending_migrations(self) -> list[str]:
        """Versions on disk that are not applied, oldest first."""
        return [migration.version for migration in self.migrator.pending()]

    def get_migration_status(self) -> dict[str, Any]:
        """The same dict as migration_status()."""
        return _status(self.migrator)

    def run_migrations(self) -> bool:
        """Apply every pending version; False (logged) on failure."""
        return _succeeds("migrations", self.migrator.migrate)

    def apply_migration(self, version: str) -> bool:
        """Apply the pending version ``version`` alone; False (logged) on failure."""
        return _succeeds(f"applying {version}", lambda: self.migrator.migrate(only=version))

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
        return self.migrator.verify(allow_empty=True).ok

    def get_history(self, version: str | None = None, *,
                    limit: int | None = None) -> list[dict[str, Any]]:
        """The journal, newest first, as ``history --json`` gives its runs (no SQL texts;
        an empty list when the database has no journal yet)."""
        return self.migrator.history(version, limit=limit).to_dict()["runs"]  # type: ignore[no-any-return]


def tables(database: str | None = None, *, config: PathLike | None = None) -> None:
    """Sibila's legacy start-up call: create documents_info and paragraphs_metadatas.

    It makes no tracking table and no indexes, as before; ``migrate`` adopts a
    database made this way as it is.
    """
    settings = load_settings(database=database, config=config)
    if settings.database.dialect != "sqlite":
        raise ConfigError("tables() is Sibila's SQLite start-up routine; use migrate for "
                          f"{settings.database.dialect}.")
    path = settings.database.path
    try:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            for statement in LEGACY_TABLES:
                connection.execute(statement)
        finally:
            connection.close()
    except (OSError, sqlite3.Error) as error:
        raise DatabaseError(f"Cannot create Sibila's tables in {path}: {error}. Check the "
                            "path and that it is a SQLite file you may write.") from None


def check_database_health(database: str | None = None, migrations: PathLike | None = None, *,
                          migrations_dir: PathLike | None = None,
                          config: PathLike | None = None, table: str | None = None,
                          on_connect: OnConnect | None = None) -> bool:
    """Sibila's start-up check: True when the database answers and the migrations folder
    reads; False (and a logged error) otherwise. Never raises."""
    try:
        migrator = _migrator(database, migrations, migrations_dir, config, table, None,
                             on_connect)
        migrator.status()  # the server answers, the folder reads
        url = migrator.settings.database
        if url.dialect == "sqlite" and not _sqlite_file_possible(url.path):
            logger.error("database health check failed: %s cannot be created", url.path)
            return False
    except SqlmigError as error:
        logger.error("database health check failed: %s", error)
        return False
    return True


def _sqlite_file_possible(path: str) -> bool:
    """True when a SQLite file exists at ``path`` or can be made there (the nearest
    existing folder above it is writable)."""
    if path == ":memory:" or os.path.isfile(path):
        return True
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return os.path.isdir(folder) and os.access(folder, os.W_OK)


def auto_migrate_on_startup(database: str | None = None, migrations: PathLike | None = None,
                            *, migrations_dir: PathLike | None = None,
                            config: PathLike | None = None, table: str | None = None,
                            on_connect: OnConnect | None = None) -> bool:
    """Sibila's start-up: its legacy tables() on SQLite, then run_migrations(), then a
    status line in the log. True/False; never raises."""
    try:
        migrator = _migrator(database, migrations, migrations_dir, config, table, None,
                             on_connect)
        url = migrator.settings.database
        if url.dialect == "sqlite":
            new = url.path != ":memory:" and not os.path.exists(url.path)
            tables(str(url.path), config=config)
            if new:  # the file tables() just made holds nothing worth a backup
                migrator = Migrator(migrator.settings._replace(backup=False),
                                    on_connect=on_connect)
        migrator.migrate()
        status = _status(migrator)
    except SqlmigError as error:
        logger.error("automatic migration at start-up failed: %s", error)
        if error.backup is not None:
            logger.error("the backup taken before this run is %s", error.backup)
        return False
    logger.info("database at version %s: %d applied, %d pending", status["current_version"],
                status["total_applied"], status["total_pending"])
    return True


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it lies inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
