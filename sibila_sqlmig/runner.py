"""Executing migration files on a backend: one transaction per file with its row.

Files are read, split and checked before the first statement of a run is
sent, so a file that the pre-run checks refuse stops the run with nothing
done. Each file then runs in one transaction together with the write of its
tracking row (or, with ``transaction: false``, statement by statement, the
row written after the last one).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from .backends.base import Backend
from .checks import check_statements, commits_implicitly
from .checksums import checksum_of_normalised
from .discovery import (
    CHANGED,
    SMALL_FILE,
    Migration,
    Stamp,
    decode_sql_file,
    read_sql,
    read_sql_bytes,
)
from .errors import (
    ExecutedStatement,
    MigrationFilesError,
    Problem,
    RollbackRefused,
    StatementError,
    StatementRefused,
)
from .planner import DOWN, UP, VersionStatus
from .splitting import SplitError, Statement, split_sql


class PreparedFile(NamedTuple):
    """A migration file read, split and checked, ready to run.

    A small file keeps its statements. A large one keeps only where each
    statement is, so a run of many data files holds one file in memory at a
    time; ``statements()`` reads it again and refuses if it changed since the
    check.
    """

    migration: Migration
    direction: str
    path: Path
    bounds: list[tuple[int, int, int]]  # (offset, end, line) of each statement
    stamp: Stamp  # size and mtime when checked
    checksum: str  # of up.sql: what the tracking row will hold ("" for a down.sql)
    row_version: str  # the version as the tracking row spells it
    has_implicit_commits: bool  # MySQL DDL
    kept: list[Statement] | None  # the statements of a small file, read once

    @property
    def version(self) -> str:
        return self.migration.version

    @property
    def transactional(self) -> bool:
        return self.migration.transaction

    def statements(self) -> list[Statement]:
        """The statements: those checked, or sliced from the file as it is now (refused
        if it changed since the check)."""
        if self.kept is not None:
            return self.kept
        text, stamp = read_sql(self.path)
        if stamp != self.stamp:
            raise MigrationFilesError([Problem(self.path, CHANGED)])
        return [Statement(text[offset:end], line, offset) for offset, end, line in self.bounds]


class StepResult(NamedTuple):
    """One file that ran (or was found already done by a concurrent process)."""

    version: str
    description: str
    direction: str
    seconds: float
    statements: int
    skipped: bool = False


Progress = Callable[[StepResult], None]


class _BackgroundHash:
    """SHA-256 of a large file in a thread: hashlib releases the GIL on large buffers,
    so the hash costs no time while the main thread decodes and splits the file."""

    def __init__(self, data: bytes) -> None:
        self._result = ""
        self._thread = threading.Thread(target=self._run, args=(data,), daemon=True)
        self._thread.start()

    def _run(self, data: bytes) -> None:
        self._result = checksum_of_normalised(data)

    def wait(self) -> str:
        self._thread.join()
        return self._result


class _Preparation:
    """Collects prepared files and every problem found, so all are reported at once."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.files: list[PreparedFile] = []
        self.problems: list[Problem] = []
        self.refusals: list[Problem] = []

    def read(self, migration: Migration, direction: str,
             row_version: str) -> PreparedFile | None:
        """Read, split and check one file; None (and a problem noted) if it cannot run."""
        path = migration.up_path if direction == UP else migration.down_path
        hashing: _BackgroundHash | None = None
        text: str | None = None
        if direction == UP and migration.up_text is not None:
            text, stamp = migration.up_text, migration.up_stamp  # exactly what was hashed
        else:
            data, stamp = read_sql_bytes(path)
            if direction == UP and stamp != migration.up_stamp:
                self.problems.append(Problem(path, CHANGED))  # its checksum would be stale
                return None
            if direction == UP and not migration.has_checksum:
                hashing = _BackgroundHash(data)  # runs while this thread decodes and splits
            try:
                text = decode_sql_file(path, data)
            except MigrationFilesError as error:
                self.problems += error.problems
        statements = None
        try:
            statements = None if text is None else split_sql(text, self.dialect)
        except SplitError as error:
            self.problems.append(Problem(path, error.message, error.line))
        finally:
            if hashing is not None:
                migration.remember_checksum(stamp, hashing.wait())
        if text is None or statements is None:
            return None
        self.refusals += check_statements(statements, path=path, dialect=self.dialect,
                                          transactional=migration.transaction)
        bounds = [(s.offset, s.offset + len(s.sql), s.line) for s in statements]
        implicit = any(commits_implicitly(s.sql, self.dialect) for s in statements)
        kept = statements if len(text) <= SMALL_FILE else None
        checksum = migration.checksum if direction == UP else ""  # down: no row to write
        return PreparedFile(migration, direction, path, bounds, stamp, checksum, row_version,
                            implicit, kept)

    def finish(self) -> list[PreparedFile]:
        if self.problems:
            raise MigrationFilesError(self.problems + self.refusals)
        if self.refusals:
            raise StatementRefused(self.refusals)
        return self.files


def prepare_up(migrations: Sequence[Migration], dialect: str) -> list[PreparedFile]:
    """Read, split and check the up.sql of every version to apply."""
    work = _Preparation(dialect)
    for migration in migrations:
        prepared = work.read(migration, UP, migration.version)
        if prepared is None:
            continue
        if not prepared.bounds:
            work.problems.append(Problem(prepared.path, "holds no SQL statement"))
            continue
        work.files.append(prepared)
    return work.finish()


def prepare_down(entries: Sequence[VersionStatus], dialect: str) -> list[PreparedFile]:
    """Read, split and check the down.sql of every version to roll back."""
    work = _Preparation(dialect)
    for entry in entries:
        migration, row = entry.migration, entry.row
        assert migration is not None and row is not None, "plan_rollback guarantees both"
        prepared = work.read(migration, DOWN, row.version)
        if prepared is None:
            continue
        if not prepared.bounds:
            raise RollbackRefused(
                f"Cannot roll back {migration.version} ({migration.description}): "
                f"{prepared.path} holds only comments, so this version is marked "
                "irreversible. Write its down.sql, or restore the database from a backup. "
                "Nothing was rolled back.")
        work.files.append(prepared)
    return work.finish()


def run_files(backend: Backend, files: Sequence[PreparedFile],
              progress: Progress | None = None) -> list[StepResult]:
    """Run prepared files in order; stop at the first failure (raising StatementError)."""
    steps = []
    for prepared in files:
        step = run_file(backend, prepared)
        steps.append(step)
        if progress is not None:
            progress(step)
    return steps


def run_file(backend: Backend, prepared: PreparedFile) -> StepResult:
    """Run one file and write or delete its tracking row."""
    started = time.perf_counter()
    statements = prepared.statements()  # read before the transaction opens
    if prepared.transactional:
        done = _run_in_transaction(backend, prepared, statements)
    else:
        done = _run_statement_by_statement(backend, prepared, statements)
    return StepResult(prepared.version, prepared.migration.description, prepared.direction,
                      time.perf_counter() - started, len(statements), skipped=not done)


def _bookkeeping(backend: Backend, prepared: PreparedFile) -> None:
    if prepared.direction == UP:
        backend.record(prepared.version, prepared.migration.description, prepared.checksum)
    else:
        backend.unrecord(prepared.row_version)


def _already_done(backend: Backend, prepared: PreparedFile) -> bool:
    """True when a concurrent run has already applied (or rolled back) this version."""
    if backend.lock_covers_run:
        return False  # nobody else can have run since this process planned under the lock
    recorded = backend.is_recorded(prepared.row_version)
    return recorded if prepared.direction == UP else not recorded


def _run_in_transaction(backend: Backend, prepared: PreparedFile,
                        statements: list[Statement]) -> bool:
    backend.begin()
    executed: list[Statement] = []
    try:
        if _already_done(backend, prepared):
            backend.rollback()
            return False
        for statement in statements:
            _execute(backend, prepared, statement, executed, in_transaction=True)
            executed.append(statement)
        _bookkeeping(backend, prepared)
        backend.commit()
    except BaseException:
        _rollback_quietly(backend)
        raise
    return True


def _run_statement_by_statement(backend: Backend, prepared: PreparedFile,
                                statements: list[Statement]) -> bool:
    if not backend.lock_covers_run:
        backend.begin()
        try:
            done = _already_done(backend, prepared)
        finally:
            backend.rollback()
        if done:
            return False
    executed: list[Statement] = []
    for statement in statements:
        _execute(backend, prepared, statement, executed, in_transaction=False)
        executed.append(statement)
    backend.begin()
    try:
        _bookkeeping(backend, prepared)
        backend.commit()
    except BaseException:
        _rollback_quietly(backend)
        raise
    return True


def _execute(backend: Backend, prepared: PreparedFile, statement: Statement,
             executed: list[Statement], *, in_transaction: bool) -> None:
    try:
        backend.execute(statement.sql)
    except Exception as error:
        if not backend.is_driver_error(error):
            raise
        left, note = _left_in_database(backend, executed, statement, in_transaction)
        offset = backend.error_offset(error)  # PostgreSQL says where in the statement
        line = statement.line + (statement.sql.count("\n", 0, offset - 1) if offset else 0)
        raise StatementError(
            version=prepared.version,
            path=prepared.path,
            line=line,
            sql=statement.sql,
            database_message=backend.error_message(error),
            rolled_back=in_transaction,
            left_applied=[ExecutedStatement(done.line, done.sql) for done in left],
            note=note,
        ) from None


def _left_in_database(backend: Backend, executed: list[Statement], failed: Statement,
                      in_transaction: bool) -> tuple[list[Statement], str]:
    """The statements whose effects stay after a failure, and why."""
    if not in_transaction:
        return executed, "The file runs with 'transaction: false', so each statement " \
                         "committed on its own."
    if not backend.ddl_commits_implicitly:
        return [], ""
    # MySQL commits before and after each DDL statement, even before one that fails.
    if commits_implicitly(failed.sql, backend.dialect):
        last_commit = len(executed) - 1
    else:
        last_commit = max((index for index, done in enumerate(executed)
                           if commits_implicitly(done.sql, backend.dialect)), default=-1)
    if last_commit < 0:
        return [], ""
    return executed[: last_commit + 1], (
        f"{backend.dialect} commits DDL implicitly: statements up to the last DDL stayed "
        "committed; the ones after it were rolled back. Undo the listed ones by hand (or "
        "make the file idempotent) before running again.")


def _rollback_quietly(backend: Backend) -> None:
    """Roll back after a failure without hiding the original error."""
    with contextlib.suppress(Exception):  # the connection may be gone; keep the first error
        backend.rollback()


def mysql_ddl_warning(backend: Backend, files: Sequence[PreparedFile]) -> str | None:
    """The notice a run prints when DDL will commit implicitly."""
    if not backend.ddl_commits_implicitly:
        return None
    with_ddl = [prepared.version for prepared in files if prepared.has_implicit_commits]
    if not with_ddl:
        return None
    return (f"note: MySQL/MariaDB commit DDL implicitly, so a failure inside version(s) "
            f"{', '.join(with_ddl)} can leave that file's earlier statements applied; the "
            "error would list them.")
