"""sibila_sqlmig: declarative SQL-file database migrations.

The public API and nothing else. Sibila's calls (``run_migrations``,
``migration_status``, ``MigrationManager``, ``tables``) sit on top of the
typed ``Migrator``, which returns result objects and raises the errors in
``sibila_sqlmig.errors``.

Names are imported on first use (PEP 562), from the fixed table below: the
package is imported by every ``python -m sibila_sqlmig`` run, and ``--help``
or a no-op ``migrate`` should not pay for modules they never touch.
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "Migrator": "api",
    "RepairResult": "api",
    "RunResult": "api",
    "StatusResult": "api",
    "VerifyResult": "api",
    "MigrationManager": "compat",
    "migration_status": "compat",
    "run_migrations": "compat",
    "tables": "compat",
    "Settings": "config",
    "load_settings": "config",
    "ConfigError": "errors",
    "DatabaseError": "errors",
    "DriftError": "errors",
    "LockTimeoutError": "errors",
    "MigrationFilesError": "errors",
    "OutOfOrderError": "errors",
    "RollbackRefused": "errors",
    "SqlmigError": "errors",
    "StatementError": "errors",
    "UsageError": "errors",
    "State": "model",
    "StepResult": "runner",
    "Statement": "splitting",
    "split_sql": "splitting",
}

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


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sibila_sqlmig' has no attribute {name!r}")
    value = getattr(__import__(f"{__name__}.{module}", fromlist=[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
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
    from .model import State
    from .runner import StepResult
    from .splitting import Statement, split_sql
