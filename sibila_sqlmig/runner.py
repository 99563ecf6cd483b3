"""Executing prepared files on a backend: one transaction per file with its row.

Each file runs inside ``backend.transaction()`` together with the write (or,
on rollback, the delete) of its tracking row and the append of its journal
row; with ``transaction: false`` each statement commits on its own and the
rows are written after the last one. A file that fails is journaled after its
rollback. The files were read, split and checked by ``prepare`` before the
first statement of the run was sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from .backends.base import Backend
from .errors import (
    ExecutedStatement,
    FileChangedError,
    ForeignKeyCheckError,
    MigrationFilesError,
    StatementError,
    TrackingRowError,
    with_note,
)
from .journal import APPLIED, FAILED, ROLLED_BACK, JournalRecord, now, stored_text
from .log import DEBUG, debug, logger, tell
from .model import UP
from .prepare import PreparedFile, load_statements
from .splitting import Statement, head_words


class StepResult(NamedTuple):
    """One file that ran (or was found already done by a concurrent process)."""

    version: str
    description: str
    direction: str
    seconds: float
    statements: int
    skipped: bool = False
    from_journal: bool = False  # ran the down.sql the journal kept (the folder is gone)

    @property
    def outcome(self) -> str:
        """``applied``, ``rolled back``, or ``skipped`` (another process had done it)."""
        if self.skipped:
            return "skipped"
        return "applied" if self.direction == UP else "rolled back"

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of one step of ``migrate --json`` (documented in README)."""
        return {"version": self.version, "description": self.description,
                "direction": self.direction, "seconds": round(self.seconds, 6),
                "statements": self.statements, "outcome": self.outcome,
                "from_journal": self.from_journal}


Progress = Callable[[StepResult], None]
#: Told after each statement: the file, how many of its statements ran, how many in all.
StatementProgress = Callable[["PreparedFile", int, int], None]


def run_files(backend: Backend, files: Sequence[PreparedFile],
              progress: Progress | None = None,
              on_statement: StatementProgress | None = None) -> list[StepResult]:
    """Run prepared files in order; stop at the first failure (raising StatementError)."""
    steps: list[StepResult] = []
    for prepared in files:
        try:
            step = run_file(backend, prepared, on_statement)
        except MigrationFilesError as error:  # a large file that changed since its check
            raise FileChangedError(error.problems[0],
                                   [done.version for done in steps if not done.skipped]) \
                from None
        steps.append(step)
        log = logger(__name__)
        if log is not None:
            log.info("%s %s %s (%.3f s, %d statements)", step.outcome, step.version,
                     step.description, step.seconds, step.statements)
        if progress is not None:
            progress(step)
    return steps


def run_file(backend: Backend, prepared: PreparedFile,
             on_statement: StatementProgress | None = None) -> StepResult:
    """Run one file and write or delete its tracking row; after a lock timeout or a
    deadlock, run it again (header ``retries``) when nothing of it stayed."""
    started = time.perf_counter()
    statements = load_statements(prepared)  # read before the transaction opens
    log = logger(__name__)  # asked once per file: each statement's DEBUG line is optional
    statement_log = log if log is not None and log.isEnabledFor(DEBUG) else None
    header = prepared.migration.header
    assert header is not None, "prepare() only takes migrations with their header"
    attempts = 1 + backend.file_retries(header)
    for attempt in range(1, attempts + 1):
        execution = _Execution(backend, prepared, len(statements), statement_log,
                               on_statement, attempt)
        try:
            if prepared.transactional:
                done = _run_in_transaction(execution, statements)
            else:
                done = _run_statement_by_statement(execution, statements)
            break
        except (StatementError, TrackingRowError, ForeignKeyCheckError) as error:
            _journal_failure(execution, error)
            if not isinstance(error, StatementError) or not error.lock_failure:
                raise
            # Never again after something of the file stayed (no transaction, or MySQL's
            # implicit commits): running it twice could apply a statement twice. Nor after
            # a CONCURRENTLY statement: a failed one leaves an INVALID index behind.
            stayed = bool(error.left_applied) or "CONCURRENTLY" in head_words(error.sql, 4)
            again = attempt < attempts and not stayed
            holders = _lock_holders(backend)
            if not again:
                if attempts > 1:
                    holders = (f"Not run again: part of it may have stayed. {holders}"
                               if stayed else f"Attempt {attempt} of {attempts}. {holders}")
                raise with_note(error, holders.rstrip()) from None
            delay = _backoff(attempt)
            tell(__name__, backend.notify,
                 f"{prepared.version} {prepared.description}: {error.database_message} "
                 f"(attempt {attempt} of {attempts}); running the file again in "
                 f"{delay:.1f} s. {holders}".rstrip())
            time.sleep(delay)
    return StepResult(prepared.version, prepared.description, prepared.direction,
                      time.perf_counter() - started, len(statements), skipped=not done,
                      from_journal=prepared.from_journal)


def _backoff(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: doubling from 0.5 s up to 30 s, with jitter
    so that runs that failed together do not retry together."""
    import random

    return min(30.0, 0.5 * 2.0 ** (attempt - 1)) * random.uniform(0.75, 1.25)


def _lock_holders(backend: Backend) -> str:
    """Who holds locks now; "" when the engine cannot tell. Never raises: the lock
    failure being reported matters more than a detail of it."""
    try:
        return backend.lock_holders()
    except Exception as error:
        debug(__name__, "could not tell who holds the locks: %s", error)
        return ""


def _journal_failure(run: _Execution,
                     error: StatementError | TrackingRowError | ForeignKeyCheckError) -> None:
    """Append the failed run to the journal, after its rollback, in a transaction of its
    own. The error is what the user must see: a journal that cannot be written (the
    connection died with the statement) is logged, never raised over it."""
    backend = run.backend
    try:
        with backend.transaction():
            refused = backend.try_journal(run.journal_record(FAILED, str(error)))
    except Exception as failure:  # whatever it is, the error being raised matters more
        refused = (backend.error_message(failure) if backend.is_driver_error(failure)
                   else str(failure) or type(failure).__name__)
    if refused is not None:
        debug(__name__, "could not journal the failed run of %s: %s", run.prepared.version,
              refused)


def _bookkeeping(run: _Execution) -> None:
    """Write (or delete) the tracking row and append the journal row."""
    backend, prepared = run.backend, run.prepared
    try:
        refused = backend.bookkeep(run.journal_record(APPLIED if prepared.direction == UP
                                                      else ROLLED_BACK),
                                   row_version=prepared.row_version)
    except Exception as error:
        if not backend.is_driver_error(error):
            raise
        if not prepared.transactional:
            outcome = "The file ran with 'transaction: false': its statements stayed."
        elif prepared.has_implicit_commits:
            outcome = (f"{backend.dialect} commits DDL implicitly: the file's statements up "
                       "to its last DDL stayed.")
        else:
            outcome = "The file's transaction was rolled back: nothing of it stayed."
        raise TrackingRowError(version=prepared.version, path=prepared.path,
                               table=str(backend.table),
                               database_message=backend.error_message(error),
                               outcome=outcome, direction=prepared.direction) from None
    if refused is not None:
        _journal_not_written(run, refused)


def _journal_not_written(run: _Execution, reason: str) -> None:
    """Say that a run went unrecorded in the journal (it stays applied and recorded)."""
    tell(__name__, run.backend.notify,
         f"warning: version {run.prepared.version} {run.prepared.direction} ran and is "
         f"recorded, but its journal row could not be written: {reason}")


def _already_done(backend: Backend, prepared: PreparedFile) -> bool:
    """True when a concurrent run has already applied (or rolled back) this version."""
    if backend.lock_covers_run:
        return False  # nobody else can have run since this process planned under the lock
    recorded = backend.is_recorded(prepared.row_version)
    return recorded if prepared.direction == UP else not recorded


_ERROR_CAP = 8000  # characters of an error message the journal keeps


class _Execution:
    """One file's run: what it needs to execute, log and report each statement."""

    def __init__(self, backend: Backend, prepared: PreparedFile, total: int, log: Any,
                 on_statement: StatementProgress | None, attempt: int = 1) -> None:
        self.backend = backend
        self.prepared = prepared
        self.total = total
        self.log = log  # a logger enabled for DEBUG, or None
        self.on_statement = on_statement
        self.attempt = attempt
        self.executed: list[Statement] = []
        self.started_at: datetime = now()
        self.started = time.perf_counter()
        # What the journal keeps, read now, before anything runs: a file that changed
        # since its check stops the run here, not after its statements ran.
        self.sql_text = stored_text(prepared.source)
        self.down_text = stored_text(prepared.down)

    def journal_record(self, outcome: str, error: str | None = None) -> JournalRecord:
        """This run as a journal row: what ran, the down.sql of an up run, how it went."""
        prepared = self.prepared
        header = prepared.migration.header
        assert header is not None, "prepare() only takes migrations with their header"
        down = prepared.down
        return JournalRecord(
            prepared.version, prepared.direction, prepared.description, prepared.checksum,
            self.sql_text, prepared.source.checksum, self.down_text,
            down.checksum if down is not None else None, header.transaction,
            header.rollback, prepared.source.location, self.started_at,
            time.perf_counter() - self.started, outcome,
            None if error is None else error[:_ERROR_CAP], len(self.executed), self.attempt)

    def execute(self, statement: Statement, *, in_transaction: bool) -> None:
        """Run one statement; a StatementError says where it failed and what stayed."""
        backend, prepared, log = self.backend, self.prepared, self.log
        started = time.perf_counter() if log is not None else 0.0
        try:
            backend.execute(statement.sql)
        except Exception as error:
            if not backend.is_driver_error(error):
                raise
            left, note = _left_in_database(backend, self.executed, statement, in_transaction)
            offset = backend.error_offset(error)  # PostgreSQL says where in the statement
            line = statement.line + (statement.sql.count("\n", 0, offset - 1) if offset else 0)
            if prepared.from_journal:
                note = " ".join(filter(None, [note, (
                    "This is the down.sql the journal kept when the version was applied (its "
                    "folder is gone): restore the folder to fix it, or run `sibila-sqlmig "
                    "repair --forget-missing` to drop its row.")]))
            raise StatementError(
                version=prepared.version,
                path=prepared.path,
                line=line,
                sql=statement.sql,
                database_message=backend.error_message(error),
                rolled_back=in_transaction,
                left_applied=[ExecutedStatement(done.line, done.sql) for done in left],
                note=note,
                direction=prepared.direction,
                lock_failure=backend.is_lock_failure(error),
            ) from None
        if log is not None:
            log.debug("%s:%d: %s (%.3f s)", prepared.source.location, statement.line,
                      statement.sql.split("\n", 1)[0][:120], time.perf_counter() - started)
        self.executed.append(statement)
        if self.on_statement is not None:
            self.on_statement(prepared, len(self.executed), self.total)


def _run_in_transaction(run: _Execution, statements: Sequence[Statement]) -> bool:
    prepared = run.prepared
    assert prepared.migration.header is not None, "prepare() only takes migrations with headers"
    with run.backend.file_transaction(prepared.migration.header, path=prepared.path,
                                      version=prepared.version, direction=prepared.direction):
        if _already_done(run.backend, run.prepared):
            return False  # the transaction wrote nothing
        for statement in statements:
            run.execute(statement, in_transaction=True)
        _bookkeeping(run)
    return True


def _run_statement_by_statement(run: _Execution, statements: Sequence[Statement]) -> bool:
    if not run.backend.lock_covers_run:
        with run.backend.transaction():
            done = _already_done(run.backend, run.prepared)
        if done:
            return False
    assert run.prepared.migration.header is not None, "prepared with its header"
    with run.backend.file_session(run.prepared.migration.header):
        for statement in statements:
            run.execute(statement, in_transaction=False)
    with run.backend.transaction():
        _bookkeeping(run)
    return True


def _left_in_database(backend: Backend, executed: list[Statement], failed: Statement,
                      in_transaction: bool) -> tuple[list[Statement], str]:
    """The statements whose effects stay after a failure, and why."""
    if not in_transaction:
        return executed, "The file runs with 'transaction: false', so each statement " \
                         "committed on its own."
    # Where DDL commits implicitly (MySQL), it commits before and after each such
    # statement, even before one that fails.
    if backend.commits_implicitly(failed.sql):
        last_commit = len(executed) - 1
    else:
        last_commit = max((index for index, done in enumerate(executed)
                           if backend.commits_implicitly(done.sql)), default=-1)
    if last_commit < 0:
        return [], ""
    return executed[: last_commit + 1], (
        f"{backend.dialect} commits DDL implicitly: statements up to the last DDL stayed "
        "committed; the ones after it were rolled back. Undo the listed ones by hand (or "
        "make the file idempotent) before running again.")


def implicit_commit_notice(files: Sequence[PreparedFile]) -> str | None:
    """The notice a run prints when DDL will commit implicitly (MySQL/MariaDB)."""
    with_ddl = [prepared.version for prepared in files
                if prepared.direction == UP and prepared.has_implicit_commits]
    if not with_ddl:
        return None
    return (f"note: MySQL/MariaDB commit DDL implicitly, so a failure inside version(s) "
            f"{', '.join(with_ddl)} can leave that file's earlier statements applied; the "
            "error would list them.")
