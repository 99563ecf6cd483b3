"""The error types. Every expected failure is one of these.

Each error carries the exit code the command line uses for it (1: the
operation failed; 2: bad usage, configuration or migration files) and renders
as one message that says what happened, where, and what to do next. The CLI
is the only place that turns them into text and exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class SqlmigError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = EXIT_FAILED
    #: SQLite: the backup taken before the run that failed (``restore`` puts it back).
    backup: str | None = None


# --- exit code 2: usage, configuration, files -------------------------------------------


# The command line's spelling of an API argument, where it is not --NAME.
_COMMAND_LINE_NAMES = {"version": "baseline", "lint": "lint", "diff": "diff"}


class UsageError(SqlmigError):
    """A command was called with arguments that cannot work (unknown version, --steps 0).

    Given the ``argument`` at fault, the message names it as a Python caller wrote it
    (``to='999': ...``); ``for_command_line`` names the option (``--to 999: ...``).
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, argument: str | None = None,
                 value: object = None) -> None:
        self.argument = argument
        self.value = value
        self.detail = message
        super().__init__(f"{argument}={value!r}: {message}" if argument else message)

    def for_command_line(self) -> str:
        """The message as the command line words it."""
        if self.argument is None:
            return str(self)
        option = _COMMAND_LINE_NAMES.get(self.argument,
                                         f"--{self.argument.replace('_', '-')}")
        return f"{option} {self.value}: {self.detail}"


class ConfigError(SqlmigError):
    """The configuration (option, environment or sibila_sqlmig.yaml) is invalid."""

    exit_code = EXIT_USAGE


class DriverMissingError(ConfigError):
    """The database driver for a URL scheme is not installed."""


class Problem(NamedTuple):
    """One problem found in the migrations folder: where it is and what is wrong."""

    path: Path
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


class MigrationFilesError(SqlmigError):
    """The migrations folder holds one or more invalid entries; all are listed."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        lines = [f"{head} in the migrations folder; the database was not changed:"]
        lines += [f"  {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


class StatementRefused(MigrationFilesError):
    """A pre-run check refused a statement (e.g. VACUUM in a transactional file)."""


# --- exit code 1: the operation failed -----------------------------------------------------


class DatabaseError(SqlmigError):
    """The database could not be reached or answered with an error outside a migration."""


class ConnectError(DatabaseError):
    """The server could not be reached, or refused the connection.

    ``reason`` is the driver's account of it; ``retryable`` says whether waiting could
    help (the server is not up yet), as opposed to a refusal that will not change (a
    wrong password, no such database).
    """

    def __init__(self, message: str, *, reason: str, retryable: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable


class LockTimeoutError(SqlmigError):
    """Another process held the migration lock for longer than the lock timeout."""


class LockLostError(SqlmigError):
    """``lock: table``: the run's lock row was taken over or deleted while it held it."""


class DriftError(SqlmigError):
    """Applied migrations were edited or removed; migrate refuses until that is resolved."""


class OutOfOrderError(SqlmigError):
    """A pending version is older than the newest applied one."""


class RollbackRefused(SqlmigError):
    """Rollback cannot run: nothing applied, a down.sql without statements, a folder gone."""


class ForeignKeyCheckError(SqlmigError):
    """SQLite's ``PRAGMA foreign_key_check`` found rows whose parent is missing at the end
    of a file run with ``foreign_keys: off``; the file was rolled back."""

    def __init__(self, *, version: str, path: Path, direction: str,
                 violations: Sequence[tuple[str, int | None, str, int]]) -> None:
        self.version = version
        self.path = path
        self.direction = direction
        self.violations = list(violations)
        verb = "applying" if direction == "up" else "rolling back"
        state = ("it was not recorded" if direction == "up"
                 else "it is still recorded as applied")
        shown = [f"  table {table} rowid {rowid}: references {parent} (foreign key {key})"
                 for table, rowid, parent, key in self.violations[:20]]
        if len(self.violations) > 20:
            shown.append(f"  ... and {len(self.violations) - 20} more")
        super().__init__("\n".join([
            f"{path}: {verb} version {version} left {len(self.violations)} row(s) whose "
            "foreign key points to no parent (PRAGMA foreign_key_check, run because of "
            f"'foreign_keys: off'). The file was rolled back and {state}:", *shown,
            "  Fix the statements (copy the rows the children need, keep the parent's keys) "
            "or the data, and run the command again."]))


class JournalMissingError(SqlmigError):
    """The journal holds no record that a command needs (``diff`` of a version that ran
    before the journal existed)."""


class FileChangedError(SqlmigError):
    """A file changed on disk after it was checked, while the run was under way."""

    def __init__(self, problem: Problem, done: Sequence[str]) -> None:
        self.problem = problem
        self.path = problem.path
        self.done = list(done)
        applied = (f"This run had already applied or rolled back: {', '.join(self.done)}."
                   if self.done else "Nothing had run yet.")
        super().__init__(f"{problem} {applied} Run the command again.")


class TrackingRowError(SqlmigError):
    """A file ran, but its tracking row could not be written (or deleted)."""

    def __init__(self, *, version: str, path: Path, table: str, database_message: str,
                 outcome: str, direction: str = "up") -> None:
        self.version = version
        self.path = path
        done, row = (("ran", "written") if direction == "up"
                     else ("was rolled back", "deleted"))
        super().__init__(
            f"{path}: version {version} {done}, but its row in the tracking table {table} "
            f"could not be {row}: {database_message}. Does the file drop or rename "
            f"{table}? (A project that removes an older tool's table of that name should "
            f"give ours another name with --table.) {outcome}")


class ExecutedStatement(NamedTuple):
    """A statement that ran (and was committed) before a later statement failed."""

    line: int
    sql: str


class StatementError(SqlmigError):
    """A statement of a migration file (up.sql, or down.sql when rolling back) failed."""

    def __init__(
        self,
        *,
        version: str,
        path: Path,
        line: int,
        sql: str,
        database_message: str,
        rolled_back: bool,
        left_applied: Sequence[ExecutedStatement] = (),
        note: str = "",
        direction: str = "up",
        lock_failure: bool = False,
    ) -> None:
        self.version = version
        self.path = path
        self.line = line
        self.sql = sql
        self.database_message = database_message
        self.rolled_back = rolled_back
        self.left_applied = list(left_applied)
        self.direction = direction
        self.note = note
        #: The statement timed out waiting for a lock, or lost a deadlock: running the
        #: file again may succeed (header key ``retries``).
        self.lock_failure = lock_failure
        verb = "applying" if direction == "up" else "rolling back"
        lines = [
            f"{path}:{line}: statement failed {verb} version {version}: {database_message}",
            f"  statement: {_excerpt(sql)}",
        ]
        # Applying, a failure leaves the version unrecorded; rolling back, recorded.
        state = ("it was not recorded" if direction == "up"
                 else "it is still recorded as applied")
        if rolled_back and not self.left_applied:
            lines.append(f"  Nothing of {path.name} stayed in the database, and {state}.")
        else:
            lines.append(f"  Version {version}: {state}. These statements of {path.name} had "
                         "already run and remain in the database:")
            lines += [f"    line {done.line}: {_excerpt(done.sql)}" for done in self.left_applied]
        if note:
            lines.append(f"  {note}")
        again = "migrate" if direction == "up" else "rollback"
        if lock_failure:
            lines.append(f"  Another session held a lock it needed: end that session, or run "
                         f"{again} again when it is done ('lock_timeout' and 'retries' in "
                         "migration.yaml make the file wait and try again by itself).")
        else:
            lines.append(f"  Fix the statement in {path.name} (or the data it needs) and run "
                         f"{again} again.")
        super().__init__("\n".join(lines))


def with_note(error: StatementError, note: str) -> StatementError:
    """The same failure with one more line of explanation."""
    return StatementError(
        version=error.version, path=error.path, line=error.line, sql=error.sql,
        database_message=error.database_message, rolled_back=error.rolled_back,
        left_applied=error.left_applied, note=" ".join(filter(None, [error.note, note])),
        direction=error.direction, lock_failure=error.lock_failure)


def _excerpt(sql: str, limit: int = 160) -> str:
    """One line of a statement, cut to a readable length."""
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
