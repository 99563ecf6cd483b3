"""A Plan -> prepared files: read, split and checked, before anything runs.

Every file of a run is prepared before its first statement is sent, so a
file that cannot be read or split, or that a pre-run check refuses, stops
the run with nothing done, and every such problem is reported at once (a
comment-only down.sql refuses the rollback outright: nothing else matters then).
This is also what ``migrate --dry-run`` shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from .backends.base import Backend
from .errors import MigrationFilesError, Problem, RollbackRefused, StatementRefused
from .lint import Finding, lint_file, refusals, warnings_of
from .model import (
    DOWN,
    ROLLBACK_IRREVERSIBLE,
    ROLLBACK_NOOP,
    UP,
    Migration,
    Plan,
    PlanStep,
    SqlFile,
)
from .splitting import SplitError, Statement, has_statement, split_sql
from .sqlfile import read_sql_file, read_text


class PreparedFile(NamedTuple):
    """One file of a plan, split and checked, ready to run.

    ``statements`` holds the statements of a small file (or of every file in a
    dry run). Of a large one only where each statement is (``bounds``) is kept,
    so a run over many data files holds one file in memory at a time;
    ``load_statements`` reads it again, refusing if it changed since.
    """

    migration: Migration
    direction: str
    source: SqlFile  # the file that runs: up.sql or down.sql
    row_version: str  # the version as the tracking row spells it
    bounds: tuple[tuple[int, int, int], ...]  # (offset, end, line) of each statement
    statements: tuple[Statement, ...] | None
    has_implicit_commits: bool  # a statement commits the transaction (MySQL DDL)
    down: SqlFile | None = None  # of an up run: its down.sql now, which the journal keeps
    from_journal: bool = False  # a rollback running the down.sql the journal kept
    warnings: tuple[str, ...] = ()  # lint warnings (docs/lint.md), printed by a run

    @property
    def rollback(self) -> str:
        """The header's ``rollback:`` (sql, noop or irreversible)."""
        header = self.migration.header
        assert header is not None, "prepare() only takes migrations with their header"
        return header.rollback

    @property
    def version(self) -> str:
        return self.migration.version

    @property
    def description(self) -> str:
        header = self.migration.header
        assert header is not None, "prepare() only takes migrations with their header"
        return header.description

    @property
    def transactional(self) -> bool:
        header = self.migration.header
        assert header is not None, "prepare() only takes migrations with their header"
        return header.transaction

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def checksum(self) -> str:
        """What the tracking row holds: the checksum of up.sql (in both directions)."""
        return self.migration.up.checksum


def prepare(plan: Plan, backend: Backend, *, keep_statements: bool = False
            ) -> list[PreparedFile]:
    """Read, split and check every file of ``plan``; raise listing every problem.

    The migrations of the plan must carry their headers (discovery.read_headers).
    ``keep_statements`` keeps every file's statements (a dry run shows them).
    """
    problems: list[Problem] = []
    refusals: list[Problem] = []
    files = []
    for step in plan.steps:
        try:
            prepared, refused = _prepare_file(step, plan.direction, backend, keep_statements)
        except MigrationFilesError as error:
            problems += error.problems
            continue
        except SplitError as error:
            problems.append(Problem(_source_path(step, plan.direction), error.message,
                                    error.line))
            continue
        if plan.direction == UP and not prepared.bounds:  # discovery judged; it changed?
            problems.append(Problem(prepared.path, "holds no SQL statement"))
            continue
        if plan.direction == DOWN:
            problem = _rollback_problem(prepared)
            if problem is not None:
                problems.append(problem)
                continue
        problem = _foreign_keys_problem(prepared, backend.dialect)
        if problem is not None:
            problems.append(problem)
            continue
        refusals += refused
        files.append(prepared)
    if problems:
        raise MigrationFilesError(problems + refusals)
    if refusals:
        raise StatementRefused(refusals)
    return files


def _foreign_keys_problem(prepared: PreparedFile, dialect: str) -> Problem | None:
    """``foreign_keys:`` is SQLite's pragma, set around a file's transaction."""
    header = prepared.migration.header
    if header is None or header.foreign_keys is None:
        return None
    where = prepared.path.parent / "migration.yaml"
    if dialect != "sqlite":
        return Problem(where, f"'foreign_keys' is for SQLite's table rebuilds; on {dialect} "
                       "remove it (write SET FOREIGN_KEY_CHECKS = 0 on MySQL, or defer the "
                       "constraints on PostgreSQL, in the file itself)")
    if not header.transaction:
        return Problem(where, "'foreign_keys' needs 'transaction: true' (its check runs "
                       "before COMMIT); with 'transaction: false' write PRAGMA foreign_keys "
                       "in the file itself")
    return None


def _rollback_problem(prepared: PreparedFile) -> Problem | None:
    """Refuse a rollback the header or down.sql rules out; a problem where the files
    contradict each other."""
    name = f"{prepared.version} ({prepared.description})"
    mode = prepared.rollback
    if prepared.from_journal:  # vanished_step refused irreversible ones already
        if mode != ROLLBACK_NOOP and not prepared.bounds:
            raise RollbackRefused(
                f"Cannot roll back {name}: its folder is gone, and the down.sql the journal "
                "kept holds only comments. Restore its folder from version control, or run "
                "`sibila-sqlmig repair --forget-missing` to drop its row. Nothing was rolled "
                "back.")
        return None
    if mode == ROLLBACK_IRREVERSIBLE:
        raise RollbackRefused(
            f"Cannot roll back {name}: its migration.yaml says 'rollback: irreversible'. "
            "Restore the database from a backup, or write a new version that undoes it. "
            "Nothing was rolled back.")
    if mode == ROLLBACK_NOOP:
        if prepared.bounds:
            return Problem(prepared.path, "holds statements, but migration.yaml says "
                           "'rollback: noop' (nothing to undo); remove the statements, or the "
                           "key so that they run")
        return None
    if not prepared.bounds:
        raise RollbackRefused(
            f"Cannot roll back {name}: {prepared.path} holds only comments, so this version "
            "is irreversible. Write its down.sql; or, if there is nothing to undo, put "
            "'rollback: noop' in its migration.yaml (rolling back then only deletes its "
            "row); or say 'rollback: irreversible' there. Nothing was rolled back.")
    return None


def _source_path(step: PlanStep, direction: str) -> Path:
    return step.migration.up_path if direction == UP else step.migration.down_path


def _prepare_file(step: PlanStep, direction: str, backend: Backend,
                  keep_statements: bool) -> tuple[PreparedFile, list[Problem]]:
    """One file read, split and checked, and what the checks refuse in it."""
    migration = step.migration
    down = None
    refused: list[Problem] = []
    down_warnings: list[str] = []
    if direction == UP:
        source = migration.up
        down, judged = read_sql_file(migration.down_path)  # kept by the journal
        header = migration.header
        if header is not None and header.rollback == ROLLBACK_NOOP and \
                has_statement(judged, backend.dialect):
            refused.append(Problem(down.path, "holds statements, but migration.yaml says "
                                   "'rollback: noop' (nothing to undo); remove the "
                                   "statements, or the key so that they run"))
        elif header is not None:
            # The journal keeps this down.sql: what would refuse it at rollback time is
            # said now, while the file can still be fixed (a warning: the up run is fine).
            down_warnings = [f"{problem} (rollback would refuse this down.sql: fix it now, "
                             "while the journal can still keep the fixed one)"
                             for problem in _down_refusals(down, header.transaction, backend)]
    else:
        source = step.stored_down or read_sql_file(migration.down_path)[0]
    assert migration.header is not None, "prepare() only takes migrations with their header"
    statements, findings = split_and_lint(
        source, backend.dialect, transactional=migration.header.transaction,
        has_lock_timeout=backend.file_timeouts(migration.header)[0] is not None)
    keep = keep_statements or source.text is not None
    prepared = PreparedFile(
        migration, direction, source, step.row_version,
        tuple((s.offset, s.offset + len(s.sql), s.line) for s in statements),
        tuple(statements) if keep else None,
        any(backend.commits_implicitly(s.sql) for s in statements),
        down, step.stored_down is not None,
    )
    refused += refusals(findings)
    warned = [str(finding) for finding in warnings_of(findings, down=direction == DOWN)]
    if warned or down_warnings:
        prepared = prepared._replace(warnings=tuple(warned + down_warnings))
    return prepared, refused


def split_and_lint(source: SqlFile, dialect: str, *, transactional: bool,
                   has_lock_timeout: bool) -> tuple[list[Statement], list[Finding]]:
    """A SQL file's statements and its lint findings (docs/lint.md), as a run and the
    ``lint`` command both judge it; SplitError when it does not split."""
    text = read_text(source)
    statements = split_sql(text, dialect)
    return statements, lint_file(text, statements, path=source.location, dialect=dialect,
                                 transactional=transactional, has_lock_timeout=has_lock_timeout)


def _down_refusals(down: SqlFile, transactional: bool, backend: Backend) -> list[Problem]:
    """The lint errors of an up run's down.sql (a file that does not split, too)."""
    try:
        return refusals(split_and_lint(down, backend.dialect, transactional=transactional,
                                       has_lock_timeout=True)[1])
    except SplitError as error:
        return [Problem(down.path, error.message, error.line)]


def load_statements(prepared: PreparedFile) -> tuple[Statement, ...]:
    """The statements of a prepared file: those kept, or sliced from the file as it
    is now (MigrationFilesError if it changed since it was prepared)."""
    if prepared.statements is not None:
        return prepared.statements
    text = read_text(prepared.source)
    return tuple(Statement(text[offset:end], line, offset)
                 for offset, end, line in prepared.bounds)
