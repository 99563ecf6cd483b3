"""sibila_sqlmig: declarative SQL-file database migrations.

The public API and nothing else. Sibila's calls (``run_migrations``,
``migration_status``, ``MigrationManager``, ``tables``) sit on top of the
typed ``Migrator``, which returns result objects and raises the errors in
``sibila_sqlmig.errors``.
"""

__version__ = "0.1.0"

from .api import Migrator, RepairResult, RunResult, StatusResult, VerifyResult
from .compat import MigrationManager, migration_status, run_migrations, tables
from .config import Settings, load_settings
from .errors import (
    ConfigError,
    DatabaseError,
    DriftError,
    LockTimeoutError,
    MigrationFilesError,
    OutOfOrderError,
    RollbackRefused,
    SqlmigError,
    StatementError,
    UsageError,
)
from .planner import State
from .runner import StepResult
from .splitting import Statement, split_sql

__all__ = [
    "ConfigError",
    "DatabaseError",
    "DriftError",
    "LockTimeoutError",
    "MigrationFilesError",
    "MigrationManager",
    "Migrator",
    "OutOfOrderError",
    "RepairResult",
    "RollbackRefused",
    "RunResult",
    "Settings",
    "SqlmigError",
    "State",
    "Statement",
    "StatementError",
    "StatusResult",
    "StepResult",
    "UsageError",
    "VerifyResult",
    "__version__",
    "load_settings",
    "migration_status",
    "run_migrations",
    "split_sql",
    "tables",
]
