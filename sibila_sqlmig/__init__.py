"""sibila_sqlmig: declarative SQL-file database migrations.

The public API and nothing else. Sibila's calls (``run_migrations``,
``migration_status``, ``MigrationManager``, ``tables``) sit on top of the
typed ``Migrator``, which returns result objects and raises the errors in
``sibila_sqlmig.errors``.

Names are imported on first use (PEP 562), from the table below: the
package is imported by every ``python -m sibila_sqlmig`` run, and importing
the whole API eagerly would cost ``--help`` about 15 ms of its 28 ms
(benchmarks/run.py, startup). ``_EXPORTS`` is the one list of public names;
the block at the end says the same to type checkers, and a test keeps the
two equal.
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "Migrator": "api",
    "DiffResult": "api",
    "HistoryResult": "api",
    "LintResult": "api",
    "RepairResult": "api",
    "RestoreResult": "api",
    "RunResult": "api",
    "StatusResult": "api",
    "VerifyResult": "api",
    "CheckResult": "catalog.check",
    "CheckedVersion": "catalog.check",
    "DriftResult": "catalog.check",
    "MigrationManager": "compat",
    "auto_migrate_on_startup": "compat",
    "check_database_health": "compat",
    "migration_status": "compat",
    "run_migrations": "compat",
    "tables": "compat",
    "Settings": "config",
    "load_settings": "config",
    "ConfigError": "errors",
    "DatabaseError": "errors",
    "DriftError": "errors",
    "ForeignKeyCheckError": "errors",
    "JournalMissingError": "errors",
    "LockLostError": "errors",
    "LockTimeoutError": "errors",
    "MigrationFilesError": "errors",
    "OutOfOrderError": "errors",
    "RollbackRefused": "errors",
    "SqlmigError": "errors",
    "StatementError": "errors",
    "TrackingRowError": "errors",
    "UsageError": "errors",
    "JournalEntry": "model",
    "State": "model",
    "StepResult": "runner",
    "Statement": "splitting",
    "split_sql": "splitting",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sibila_sqlmig' has no attribute {name!r}")
    value = getattr(__import__(f"{__name__}.{module}", fromlist=[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see cli.py)
if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .api import DiffResult as DiffResult
    from .api import HistoryResult as HistoryResult
    from .api import LintResult as LintResult
    from .api import Migrator as Migrator
    from .api import RepairResult as RepairResult
    from .api import RestoreResult as RestoreResult
    from .api import RunResult as RunResult
    from .api import StatusResult as StatusResult
    from .api import VerifyResult as VerifyResult
    from .catalog.check import CheckedVersion as CheckedVersion
    from .catalog.check import CheckResult as CheckResult
    from .catalog.check import DriftResult as DriftResult
    from .compat import MigrationManager as MigrationManager
    from .compat import auto_migrate_on_startup as auto_migrate_on_startup
    from .compat import check_database_health as check_database_health
    from .compat import migration_status as migration_status
    from .compat import run_migrations as run_migrations
    from .compat import tables as tables
    from .config import Settings as Settings
    from .config import load_settings as load_settings
    from .errors import ConfigError as ConfigError
    from .errors import DatabaseError as DatabaseError
    from .errors import DriftError as DriftError
    from .errors import ForeignKeyCheckError as ForeignKeyCheckError
    from .errors import JournalMissingError as JournalMissingError
    from .errors import LockLostError as LockLostError
    from .errors import LockTimeoutError as LockTimeoutError
    from .errors import MigrationFilesError as MigrationFilesError
    from .errors import OutOfOrderError as OutOfOrderError
    from .errors import RollbackRefused as RollbackRefused
    from .errors import SqlmigError as SqlmigError
    from .errors import StatementError as StatementError
    from .errors import TrackingRowError as TrackingRowError
    from .errors import UsageError as UsageError
    from .model import JournalEntry as JournalEntry
    from .model import State as State
    from .runner import StepResult as StepResult
    from .splitting import Statement as Statement
    from .splitting import split_sql as split_sql
