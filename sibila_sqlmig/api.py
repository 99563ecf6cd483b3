"""The typed API: Migrator. It returns result objects, raises typed errors, never prints."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .backends import Backend, backend_for
from .config import Settings, load_settings
from .discovery import discover, read_headers
from .errors import (
    ConfigError,
    DatabaseError,
    ForeignKeyCheckError,
    JournalMissingError,
    MigrationFilesError,
    Problem,
    SqlmigError,
    StatementError,
    UsageError,
)
from .log import INFO, debug, logger, tell
from .model import (
    DOWN,
    UP,
    JournalEntry,
    Migration,
    Plan,
    State,
    StatusReport,
    VersionStatus,
)
from .planner import (
    build_status,
    missing_versions,
    plan_baseline,
    plan_migrate,
    plan_rollback,
)

if TYPE_CHECKING:
    from .catalog.check import CheckedVersion, CheckResult, DriftResult
    from .dburl import DatabaseURL
    from .fleet import SharedFolder
    from .gitbase import GitVerifyResult
    from .lint import Finding
    from .prepare import PreparedFile
    from .runner import Progress, StatementProgress, StepResult

# prepare and runner (and with them sqlparse and the checks) are imported only when
# there is something to run: a no-op migrate and status never need them.


class RunResult(NamedTuple):
    """What migrate or rollback did (or, with dry_run, would do)."""

    direction: str
    dry_run: bool
    planned: list[PreparedFile]
    steps: Sequence[StepResult] = ()
    warnings: Sequence[str] = ()
    backup: str | None = None  # SQLite: the backup taken before the run
    dump_error: SqlmigError | None = None  # the schema dump after the run failed

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``--dry-run --json`` (documented in README); a real run
        adds ``ok`` and its steps. Reads nothing: a dry run keeps every statement it
        shows."""
        result: dict[str, Any] = {
            "direction": self.direction,
            "dry_run": self.dry_run,
            "migrations": [
                {
                    "version": prepared.version,
                    "description": prepared.description,
                    "file": str(prepared.path),
                    "transaction": prepared.transactional,
                    "statements": _statements_dict(prepared),
                }
                for prepared in self.planned
            ],
            "warnings": list(self.warnings),
        }
        if not self.dry_run:
            result["ok"] = self.dump_error is None
            result["steps"] = [step.to_dict() for step in self.steps]
            result["backup"] = self.backup
            if self.dump_error is not None:
                result["dump_error"] = str(self.dump_error)
        return result


def _statements_dict(prepared: PreparedFile) -> list[dict[str, Any]]:
    """Each statement's line and SQL; of a large file that ran, its lines only."""
    if prepared.statements is None:
        return [{"line": line} for _, _, line in prepared.bounds]
    return [{"line": statement.line, "sql": statement.sql}
            for statement in prepared.statements]


class StatusResult(NamedTuple):
    """Every version's state, for ``status``."""

    database: str
    table: str
    report: StatusReport
    table_found: bool = True  # the database answers and holds the tracking table

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``status --json`` (documented in README)."""
        counts = {state.value: len(self.report.having(state)) for state in State}
        return {
            "database": self.database,
            "table": self.table,
            "migrations": [_entry_dict(entry) for entry in self.report.entries],
            "counts": counts,
        }


def _entry_dict(entry: VersionStatus) -> dict[str, Any]:
    return {
        "version": entry.version,
        "description": entry.description,
        "state": entry.state.value,
        "applied_at": entry.row.applied_at if entry.row else None,
        "checksum": entry.row.checksum if entry.row else None,
        "file_checksum": entry.migration.up.checksum if entry.migration else None,
        "out_of_order": entry.out_of_order,
    }


class VerifyResult(NamedTuple):
    """Drift found by ``verify``: edited and missing fail it; unverified does not.

    ``nothing_applied`` explains a database where no version is recorded while the
    folder holds some (a wrong database or table name would verify nothing): it
    fails too, unless verify was asked to allow an empty database.
    """

    edited: list[str]
    missing: list[str]
    unverified: list[str]
    report: StatusReport
    nothing_applied: str = ""
    drift: DriftResult | None = None  # with drift=True: the live catalog against the files

    @property
    def ok(self) -> bool:
        return not self.edited and not self.missing and not self.nothing_applied and \
            (self.drift is None or self.drift.ok)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``verify --json`` (documented in README)."""
        shown = {"ok": self.ok, "edited": self.edited, "missing": self.missing,
                 "unverified": self.unverified, "nothing_applied": self.nothing_applied or None}
        if self.drift is not None:
            shown["drift"] = self.drift.to_dict()
        return shown


class HistoryResult(NamedTuple):
    """The journal's rows, newest first (``journal_found`` False: the database has no
    journal yet, as one made by an earlier release or by Sibila)."""

    database: str
    journal: str
    entries: list[JournalEntry]
    journal_found: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``history --json`` (documented in README)."""
        return {"database": self.database, "journal": self.journal,
                "journal_found": self.journal_found,
                "runs": [_journal_dict(entry) for entry in self.entries]}


def _journal_dict(entry: JournalEntry) -> dict[str, Any]:
    """One journal row for JSON, without the SQL texts (``diff`` shows those)."""
    shown = entry._asdict()
    del shown["sql"], shown["down_sql"]
    return shown


class DiffResult(NamedTuple):
    """The up.sql that ran (from the journal) against the file now."""

    version: str
    same: bool
    diff: str  # a unified diff; empty when same, or when only checksums could be compared
    applied: JournalEntry
    file: str | None  # the up.sql now (None: the folder is gone)
    note: str = ""  # what could not be compared, and why


class RestoreResult(NamedTuple):
    """What ``restore`` put back, the backup it took of the file first, and the versions
    the restored database records."""

    restored_from: str
    safety_backup: str | None  # None: there was no database file to keep
    applied: list[str]


class LintResult(NamedTuple):
    """Every finding of ``lint`` (docs/lint.md); ``ok`` is False on an error that no
    ``-- sqlmig: allow`` comment allows."""

    findings: list[Finding]
    files: int

    @property
    def errors(self) -> list[Finding]:
        return [found for found in self.findings if found.level == "error" and
                not found.suppressed]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``lint --json`` (documented in docs/lint.md)."""
        return {"ok": self.ok, "files": self.files,
                "findings": [{**found._asdict(), "file": found.path}
                             for found in self.findings]}


class RepairResult(NamedTuple):
    """What ``repair`` changed in the tracking table."""

    updated: list[str]  # edited versions whose checksum now matches the file
    filled: list[str]  # NULL checksums filled in
    forgotten: list[str]  # rows of missing versions deleted (forget_missing)
    missing: Sequence[str] = ()  # rows of missing versions kept (without forget_missing)


class Migrator:
    """Migrations of one database, configured like the command line."""

    def __init__(self, settings: Settings | None = None, *, database: str | None = None,
                 migrations: str | os.PathLike[str] | None = None,
                 config: str | os.PathLike[str] | None = None, table: str | None = None,
                 lock_timeout: float | None = None, wait: float | None = None,
                 backup: bool | None = None, notify: Callable[[str], None] | None = None,
                 on_connect: Callable[[Any], None] | None = None,
                 lock_wait: float | None = None, lock: str | None = None,
                 shared_folder: SharedFolder | None = None) -> None:
        """Use ``settings``, or resolve them as the command line does: each keyword given
        here wins over the environment, then sibila_sqlmig.yaml, then the default.

        ``database``: a URL or a SQLite file path; ``migrations``: the migrations
        folder; ``config``: the config file (default: sibila_sqlmig.yaml here or in
        a parent folder); ``table``: the tracking table; ``lock_wait`` (or its older
        name ``lock_timeout``): seconds to wait for another run's migration lock;
        ``lock``: "advisory" or "table" (README: Running in production); ``wait``:
        seconds to wait for the database to
        accept connections; ``backup``: False to take no SQLite backup before a run.
        ``notify`` is told, in one line, what a run waits for (the database, another
        run's lock) and where it put a backup; the Migrator itself never prints.
        ``on_connect`` is called with the driver's connection right after connecting
        (register SQLite functions a migration uses, set session variables).
        ``shared_folder``: a ``fleet.SharedFolder`` that many Migrators share, so that
        the migrations folder is read, split and linted once for all of them.
        """
        given = {"database": database, "migrations": migrations, "config": config,
                 "table": table, "lock_timeout": lock_timeout, "wait": wait,
                 "backup": backup, "lock_wait": lock_wait, "lock": lock}
        if settings is None:
            settings = load_settings(database=database, migrations=migrations, config=config,
                                     table=table, lock_timeout=lock_timeout, wait=wait,
                                     backup=backup, lock_wait=lock_wait, lock=lock)
        elif any(value is not None for value in given.values()):
            named = ", ".join(name for name, value in given.items() if value is not None)
            raise TypeError(f"Migrator: give settings or the keywords that make them "
                            f"({named}), not both")
        self.settings = settings
        self.notify = notify
        self.on_connect = on_connect
        self.folder = shared_folder
        log = logger(__name__)
        for notice in settings.notices if log is not None else ():
            log.warning("%s", notice)

    # --- read-only ---------------------------------------------------------------------

    def status(self) -> StatusResult:
        """The state of every version; never writes to the database."""
        migrations = self._discover(unwritten_ok=True)  # right after create, too
        with self._session() as backend:
            found = backend.connect(create=False) and backend.table_exists()
            rows = backend.select_applied() if found else []
        # The table where it is: a tenant's, in the schema its URL's search_path names.
        return StatusResult(self.settings.database.redacted(), str(backend.table),
                            build_status(migrations, rows), found)

    def verify(self, *, allow_empty: bool = False, drift: bool = False,
               scratch: str | None = None) -> VerifyResult:
        """Edited, missing and unverified versions; ``ok`` is False on edited or missing,
        and on a database that records no version while the folder holds some (unless
        ``allow_empty``: a brand-new database). With ``drift`` also the live catalog
        against a scratch database built from the applied versions (``drift()``;
        ``scratch``: an empty database to build in, as for ``check``)."""
        report = self.status().report

        def versions(state: State) -> list[str]:
            return [entry.version for entry in report.having(state)]

        nothing = ""
        if not allow_empty and report.entries and not report.recorded:
            nothing = (f"no applied version is recorded: the tracking table "
                       f"{self.settings.table} is missing or empty in "
                       f"{self.settings.database.redacted()}, while "
                       f"{self.settings.migrations_dir} holds {len(report.entries)} "
                       "version(s). Check --database and --table (a wrong one verifies "
                       "nothing); for a database that is new on purpose, pass --allow-empty.")
        return VerifyResult(versions(State.EDITED), versions(State.MISSING),
                            versions(State.UNVERIFIED), report, nothing,
                            self.drift(report, scratch=scratch) if drift else None)

    def drift(self, report: StatusReport | None = None, *, scratch: str | None = None
              ) -> DriftResult:
        """Build a scratch database from the versions the database records (their
        files as they are now) and compare its catalog with the live one: what is
        only live was made by hand, what is only built was dropped by hand."""
        from .catalog import compare
        from .catalog.check import DriftResult, build

        report = report or self.status().report
        recorded = [entry for entry in report.entries if entry.row is not None]
        built = [entry.migration for entry in recorded if entry.migration is not None]
        notes = [f"version {entry.version} is applied but its folder is gone: what it "
                 "made shows as made by hand" for entry in recorded if entry.migration is None]
        notes += [f"version {entry.version}'s up.sql was edited since it ran: the scratch "
                  "database is built from the file as it is now"
                  for entry in report.having(State.EDITED)]
        with self._session() as live:
            if not live.connect(create=False):  # SQLite: no file yet (verify --allow-empty)
                return DriftResult([], [], [f"{self.settings.database.redacted()} does not "
                                            "exist yet: nothing to compare"])
            live_catalog = live.catalog()
            versions = [migration.version for migration in built]
            with self._scratch(live, scratch) as backend:
                try:
                    build(backend, built, lambda plan, b: self._prepare(plan, b, False))
                except (StatementError, ForeignKeyCheckError) as error:
                    # Not this database's failure: the applied versions do not build an
                    # empty one (a database adopted with tables made before them).
                    return DriftResult([], versions, notes, build_error=str(error))
                built_catalog = backend.catalog()
        return DriftResult(compare(built_catalog, live_catalog), versions, notes)

    def check(self, *, scratch: str | None = None,
              progress: Callable[[CheckedVersion], None] | None = None) -> CheckResult:
        """Prove each down.sql on a scratch database (never this one): for each
        version in order, snapshot, up, snapshot, down, snapshot, up; the down must
        give back the first snapshot and the second up the second. ``scratch``: the
        URL of an empty database to use (left with every version applied) instead of
        a temporary one beside this database. README: Proving down.sql."""
        import time

        from .catalog.check import CheckResult, run_check

        migrations = self._discover()
        started = time.perf_counter()
        with self._session() as live, self._scratch(live, scratch) as backend:
            versions = run_check(backend, migrations,
                                 lambda plan, b: self._prepare(plan, b, False), progress)
            shown = backend.url.redacted() if scratch else \
                f"a temporary {self.settings.database.dialect} database"
        return CheckResult(shown, versions, time.perf_counter() - started)

    def dump(self, out: str | os.PathLike[str] | None = None) -> str:
        """The database's schema as a deterministic file in the engine's own SQL, with
        the applied versions as INSERTs (README: Schema dump); written to ``out`` too
        (atomically) when given."""
        with self._session() as backend:
            if not backend.connect(create=False):
                raise DatabaseError(f"{self.settings.database.redacted()} does not exist: "
                                    "there is nothing to dump.")
            text = backend.dump()
        if out is not None:
            try:
                _write_atomically(Path(out), text)
            except OSError as error:
                raise ConfigError(f"Cannot write the schema dump to {out}: "
                                  f"{error.strerror or error}. Give a file in a folder that "
                                  "exists and is writable.") from None
        return text

    @contextlib.contextmanager
    def _scratch(self, live: Backend, url: str | None) -> Iterator[Backend]:
        """A connected backend on a scratch database, with the tracking table: ``url``
        (an empty database of the same engine, never the configured one), or a new
        one beside ``live``, dropped afterwards."""
        if url is not None:
            from .dburl import parse_database_url

            given = parse_database_url(url, base_dir=Path.cwd(), source="--scratch")
            _refuse_scratch(given, live.url)
            with self._session(given) as backend:
                backend.connect(create=True)
                found = len(backend.catalog()) + (1 if backend.table_exists() else 0)
                if found:
                    raise UsageError(f"the scratch database {given.redacted()} is not empty "
                                     f"({found} object(s)); give an empty one: every "
                                     "version is applied there.", argument="scratch",
                                     value=given.redacted())
                yield _ready(backend)
            return
        if live.dialect != "sqlite":  # the server makes it: connect (this database only)
            live.connect(create=False)
        with live.scratch_database() as made, self._session(made) as backend:
            backend.connect(create=True)
            yield _ready(backend)

    def verify_against_git(self, ref: str, *, out_of_order: bool = False) -> GitVerifyResult:
        """Without a database: the versions at git ``ref`` are unchanged in the work tree
        (checksum), none removed, and new ones sort after its newest (README:
        verify --git-base)."""
        from .gitbase import verify_against_git

        return verify_against_git(self.settings.migrations_dir, ref,
                                  self.settings.database.dialect, out_of_order=out_of_order)

    def lint(self, versions: Sequence[str] = ()) -> LintResult:
        """The lint rules (docs/lint.md) over every version's up.sql and down.sql, or those
        of ``versions``; no database (the dialect is the configured URL's)."""
        from .lint import of_direction
        from .planner import build_status, resolve_version
        from .prepare import split_and_lint
        from .splitting import SplitError
        from .sqlfile import read_sql_file

        migrations = self._discover(unwritten_ok=True)
        if versions:
            report = build_status(migrations, [])
            chosen = [resolve_version(report, version, argument="lint").migration
                      for version in versions]
            migrations = [migration for migration in chosen if migration is not None]
        dialect = self.settings.database.dialect
        findings: list[Finding] = []
        files = 0
        for migration in migrations:
            header = migration.header
            assert header is not None  # discovered with headers
            has_lock_timeout = self.settings.file_defaults.timeouts(header)[0] is not None
            for source, down in ((migration.up, False),
                                 (read_sql_file(migration.down_path)[0], True)):
                try:
                    found = split_and_lint(source, dialect, transactional=header.transaction,
                                           has_lock_timeout=has_lock_timeout)[1]
                except SplitError as error:
                    raise MigrationFilesError([Problem(source.path, error.message,
                                                       error.line)]) from None
                files += 1
                findings += of_direction(found, down=down)
        return LintResult(findings, files)

    def history(self, version: str | None = None, *, limit: int | None = None
                ) -> HistoryResult:
        """The journal, newest first: every run of every file (or of ``version``)."""
        if limit is not None and limit < 1:
            raise UsageError("give a number of rows of 1 or more.", argument="limit",
                             value=limit)
        database = self.settings.database.redacted()
        with self._session() as backend:
            journal = str(backend.table.journal)
            if not (backend.connect(create=False) and backend.journal_exists()):
                return HistoryResult(database, journal, [], journal_found=False)
            entries = backend.read_journal(version=version, limit=limit, with_sql=False)
        return HistoryResult(database, journal, entries)

    def diff(self, version: str) -> DiffResult:
        """The up.sql that ran, as the journal kept it, against the file now."""
        with self._session() as backend:
            found = backend.connect(create=False) and backend.journal_exists()
            runs = backend.read_journal(version=version, limit=1) if found else []
            applied_runs = backend.read_journal(version=version, outcome="applied",
                                                direction=UP, limit=1) if found else []
        from .planner import build_status, find_version

        entry = find_version(build_status(self._discover(headers=False, unwritten_ok=True), []),
                             version)
        now = entry.migration.up if entry is not None and entry.migration else None
        if not applied_runs:
            where = self.settings.database.redacted()
            if not found:
                why = (f"{where} has no journal yet (it was last migrated by an earlier "
                       "release or by Sibila), so nothing of what ran was kept")
            elif now is None:
                raise UsageError("no such version in the migrations folder or the journal.",
                                 argument="diff", value=version)
            else:
                why = (f"the journal of {where} holds no applied run of version {version}: "
                       "it was applied before the journal existed, or recorded by baseline, "
                       "or is not applied")
            raise JournalMissingError(f"diff {version}: {why}. `sibila-sqlmig status` "
                                      "compares the checksums of applied versions.")
        applied = applied_runs[0]
        notes = []
        if runs and runs[0].id != applied.id and runs[0].outcome in ("rolled back",
                                                                     "forgotten"):
            notes.append(f"version {applied.version} is not applied now ({runs[0].outcome} "
                         f"{runs[0].started_at} UTC, journal row {runs[0].id})")
        same = now is not None and now.checksum == applied.sql_checksum
        if applied.sql is None:
            notes.append(f"the journal kept only the checksum of {applied.file} (larger than "
                         f"{_sql_cap()} bytes), so only checksums were compared")
            return DiffResult(applied.version, same, "", applied,
                              now.location if now else None, "; ".join(notes))
        from .sqlfile import read_text

        text_now = read_text(now) if now is not None else ""
        text = unified_diff(applied.sql, text_now,
                            f"{applied.version}/up.sql as applied {applied.started_at} UTC",
                            now.location if now else "(the folder is gone)")
        return DiffResult(applied.version, same, text, applied,
                          now.location if now else None, "; ".join(notes))

    # --- changing the database ---------------------------------------------------------
    #
    # migrate and rollback plan, read and check the files from a read-only look, so
    # that an invalid file is reported before anything is written (not even the
    # tracking table). Then they take the lock, read the applied set again and plan
    # again: another process may have done (part of) the work meanwhile.

    def migrate(self, *, to: str | None = None, dry_run: bool = False,
                out_of_order: bool = False, only: str | None = None,
                progress: Progress | None = None,
                on_statement: StatementProgress | None = None) -> RunResult:
        """Apply pending versions in order (up to ``to``, or just the version ``only``);
        see README: Commands. ``progress`` hears each file done, ``on_statement`` each
        statement (the file, how many ran, how many in all)."""
        self._check_dump_file()
        return self._dumped(self._plan_and_run(
            UP, lambda report, _: plan_migrate(report, target=to, out_of_order=out_of_order,
                                               only=only),
            dry_run, progress, on_statement))

    def rollback(self, *, steps: int | None = None, to: str | None = None,
                 dry_run: bool = False, progress: Progress | None = None,
                 on_statement: StatementProgress | None = None) -> RunResult:
        """Run down.sql of the newest applied versions (one by default). A version whose
        folder is gone runs the down.sql the journal kept when it was applied."""

        def plan(report: StatusReport, backend: Backend) -> Plan:
            missing = missing_versions(report)
            kept = _kept_downs(backend, missing) if missing else {}
            return plan_rollback(report, steps=steps, target=to, kept=kept)

        self._check_dump_file()
        return self._dumped(self._plan_and_run(DOWN, plan, dry_run, progress, on_statement))

    def _dumped(self, result: RunResult) -> RunResult:
        """After a run (a no-op too), the schema dump the settings ask for (``dump``);
        one that fails is kept in ``dump_error``: the run itself stands."""
        if self.settings.dump_file is not None and not result.dry_run:
            try:
                self.dump(self.settings.dump_file)
            except SqlmigError as error:
                return result._replace(dump_error=error)
        return result

    def _check_dump_file(self) -> None:
        """Before a run: a dump file that could never be written is a usage error now,
        not after the migrations ran."""
        path = self.settings.dump_file
        if path is None:
            return
        if path.is_dir():
            raise ConfigError(f"The schema dump {path} (--dump, or 'dump:' in "
                              "sibila_sqlmig.yaml) is a folder; give a file name.")
        if not path.parent.is_dir():
            raise ConfigError(f"The schema dump {path} (--dump, or 'dump:' in "
                              f"sibila_sqlmig.yaml) is in {path.parent}, which is not a "
                              "folder that exists; create it or give another file.")

    def _plan_and_run(self, direction: str,
                      make_plan: Callable[[StatusReport, Backend], Plan],
                      dry_run: bool, progress: Progress | None,
                      on_statement: StatementProgress | None) -> RunResult:
        migrations = self._discover(headers=False)
        with self._session() as backend:
            exists = backend.connect(create=False)
            plan = make_plan(build_status(migrations, backend.read_applied() if exists else []),
                             backend)
            if not plan.steps:
                return RunResult(direction, dry_run, [])  # a no-op never imports the runner
            files = self._prepare(plan, backend, dry_run)
            if dry_run:
                return RunResult(direction, True, files, warnings=_lint_warnings(files))
            backup = self._back_up(direction, files) if exists else None
            if not exists:
                backend.connect(create=True)
            with self._locked(backend):
                again = make_plan(build_status(migrations, backend.read_applied()), backend)
                if again.numbers != plan.numbers:
                    files = self._prepare(again, backend, False)
                from .runner import implicit_commit_notice, run_files

                notice = implicit_commit_notice(files)
                warnings = [*([notice] if notice else []), *_lint_warnings(files)]
                for warning in warnings:  # before anything runs, while it can still matter
                    tell(__name__, self.notify, warning)
                try:
                    steps = run_files(backend, files, progress, on_statement)
                except SqlmigError as error:
                    if backup is not None:  # where to go back to, with the failure
                        error.backup = backup
                    raise
                return RunResult(direction, False, files, steps, warnings, backup)

    def _back_up(self, direction: str, files: Sequence[PreparedFile]) -> str | None:
        """SQLite: a consistent copy of the database file before a run changes it (README:
        SQLite); None where none is taken (turned off, in memory, another engine)."""
        settings = self.settings
        if settings.database.dialect != "sqlite" or not settings.backup:
            return None
        from .sqlite_backup import should_back_up, take_backup

        if not should_back_up(settings.database.path):
            return None
        planned = {prepared.row_version for prepared in files}

        def still_before(copy: Path) -> bool:
            # Another process may have run (some of) these versions since this one
            # planned: then the copy is not "before" this run, and must not rotate away
            # the one that is.
            recorded = _recorded_versions(copy, str(settings.table))
            return not planned & recorded if direction == UP else planned <= recorded

        taken = take_backup(settings.database.path, direction=direction,
                            versions=[prepared.version for prepared in files],
                            keep=settings.backup_keep, timeout=settings.lock_timeout,
                            still_before=still_before)
        if taken is None:
            return None
        tell(__name__, self.notify, f"backup: {taken} (`sibila-sqlmig restore` puts it back)",
             level=INFO)
        return str(taken)

    def restore(self, backup: str | os.PathLike[str] | None = None) -> RestoreResult:
        """SQLite: put back the newest backup (or ``backup``), after backing up the file as
        it is now; the result says which versions the database records then."""
        settings = self.settings
        if settings.database.dialect != "sqlite":
            tools = "pg_restore or psql" if settings.database.dialect == "postgresql" \
                else "the mysql client"
            raise UsageError(f"restore puts back the backups sibila-sqlmig takes of SQLite "
                             f"files; a {settings.database.dialect} database is restored with "
                             f"the server's own tools ({tools}).")
        from .sqlite_backup import restore_backup

        done = restore_backup(settings.database.path, None if backup is None else Path(backup),
                              keep=settings.backup_keep, timeout=settings.lock_timeout)
        with self._session() as backend:  # the rows only: the folder may have moved on
            rows = backend.read_applied() if backend.connect(create=False) else []
        applied = sorted((row.version for row in rows),
                         key=lambda version: (not version.isdigit(), int(version)
                                              if version.isdigit() else 0, version))
        return RestoreResult(str(done.restored_from),
                             None if done.safety_backup is None else str(done.safety_backup),
                             applied)

    def baseline(self, version: str) -> list[str]:
        """Record versions up to ``version`` as applied without running them."""
        migrations = self._discover()
        with self._session() as backend, self._locked(backend, create=True):
            marked = plan_baseline(build_status(migrations, backend.read_applied()), version)
            from .journal import BASELINED, bookkeeping_record

            with backend.transaction():
                for migration in marked:
                    assert migration.header is not None  # discovered with headers
                    description = migration.header.description
                    backend.record(migration.version, description, migration.up.checksum)
                    backend.journal(bookkeeping_record(migration.version, description,
                                                       migration.up.checksum, BASELINED))
            return [migration.version for migration in marked]

    def repair(self, *, forget_missing: bool = False) -> RepairResult:
        """Accept the checksums on disk for edited versions, fill NULL ones, and with
        ``forget_missing`` delete the rows of versions whose folder is gone."""
        migrations = self._discover()
        with self._session() as backend, self._locked(backend, create=True):
            report = build_status(migrations, backend.read_applied())
            edited = report.having(State.EDITED)
            unverified = report.having(State.UNVERIFIED)
            missing = report.having(State.MISSING) if forget_missing else []
            from .journal import CHECKSUM_ACCEPTED, FORGOTTEN, bookkeeping_record

            with backend.transaction():
                for entry in edited + unverified:
                    assert entry.migration is not None and entry.row is not None
                    checksum = entry.migration.up.checksum
                    backend.set_checksum(entry.row.version, checksum)
                    backend.journal(bookkeeping_record(entry.row.version, entry.description,
                                                       checksum, CHECKSUM_ACCEPTED))
                for entry in missing:
                    assert entry.row is not None
                    backend.unrecord(entry.row.version)
                    backend.journal(bookkeeping_record(entry.row.version, entry.description,
                                                       entry.row.checksum, FORGOTTEN, DOWN))
            kept = [] if forget_missing else report.having(State.MISSING)
            return RepairResult([e.version for e in edited], [e.version for e in unverified],
                                [e.version for e in missing], [e.version for e in kept])

    def ensure_table(self) -> None:
        """Create the tracking table if it does not exist (and the SQLite file)."""
        with self._session() as backend, self._locked(backend, create=True):
            pass

    def create(self, description: str) -> Path:
        """Write a new version folder; return its path."""
        from .scaffold import create_version

        return create_version(self.settings.migrations_dir, description,
                              style=self.settings.version_style)

    # --- helpers -----------------------------------------------------------------------

    def _discover(self, *, headers: bool = True, unwritten_ok: bool = False) -> list[Migration]:
        if self.folder is not None:  # a fleet: read once for every target
            return self.folder.discover(self.settings, unwritten_ok=unwritten_ok)
        return discover(self.settings.migrations_dir, self.settings.database.dialect,
                        headers=headers, unwritten_ok=unwritten_ok)

    def _prepare(self, plan: Plan, backend: Backend, keep_statements: bool
                 ) -> list[PreparedFile]:
        if self.folder is not None:  # a fleet: each file split and linted once
            return self.folder.prepare(plan, backend, keep_statements, _prepare)
        return _prepare(plan, backend, keep_statements)

    def pending(self) -> list[Migration]:
        """The versions ``migrate`` would apply now, ignoring refusals."""
        report = self.status().report
        return [e.migration for e in report.having(State.PENDING) if e.migration is not None]

    @contextlib.contextmanager
    def _session(self, database: DatabaseURL | None = None) -> Iterator[Backend]:
        """A backend for the configured database (or ``database``: a scratch one);
        closed afterwards, and any driver error raised inside becomes a DatabaseError."""
        settings = self.settings if database is None else \
            self.settings._replace(database=database)
        backend = backend_for(settings)
        backend.notify = self.notify
        backend.on_connect = self.on_connect  # a scratch database's too: its functions
        debug(__name__, "database %s, table %s", settings.database.redacted(), backend.table)
        try:
            if settings.wait > 0 and database is None:
                backend.wait_for_server(settings.wait)
            yield backend
        except Exception as error:
            if not backend.is_driver_error(error):
                raise
            raise DatabaseError(f"Database error on {settings.database}: "
                                f"{backend.error_message(error)}") from None
        finally:
            backend.close()

    @contextlib.contextmanager
    def _locked(self, backend: Backend, *, create: bool = False) -> Iterator[None]:
        """Take the migration lock and make sure the tracking table exists."""
        if create:
            backend.connect(create=True)
        debug(__name__, "taking the migration lock (waiting up to %g s)", backend.lock_timeout)
        with backend.migration_lock():
            debug(__name__, "holding the migration lock")
            try:
                backend.ensure_table()
            except Exception as error:
                if not backend.is_driver_error(error):
                    raise
                raise DatabaseError(f"Cannot create the tracking table {self.settings.table}: "
                                    f"{backend.error_message(error)}") from None
            yield


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it: a reader never
    sees half a dump."""
    import tempfile

    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        # mkstemp makes it 0600: give it the mode the file had, or a new file's.
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    current = os.umask(0o022)  # the only way to read it is to set it
    os.umask(current)
    return current


def _refuse_scratch(scratch: DatabaseURL, target: DatabaseURL) -> None:
    """A scratch database of another engine proves nothing; the target itself (or a
    schema of it) must never be the scratch database."""
    if scratch.dialect != target.dialect:
        raise UsageError(f"the scratch database is {scratch.dialect} but the database is "
                         f"{target.dialect}: give one of the same engine.",
                         argument="scratch", value=scratch.redacted())
    if scratch.identity()[:4] == target.identity()[:4]:
        raise UsageError("that is the database itself (or a schema of it); give another, "
                         "empty database: every version is applied there.",
                         argument="scratch", value=scratch.redacted())


def _ready(backend: Backend) -> Backend:
    """A scratch database's backend, ready to build in: its commits need not wait for
    the disk, and it has the tracking table."""
    backend.go_fast()
    backend.ensure_table()
    return backend


def _lint_warnings(files: Sequence[PreparedFile]) -> list[str]:
    """The lint warnings of the files a run runs (docs/lint.md), one line each."""
    return [text for prepared in files for text in prepared.warnings]


def _recorded_versions(database: Path, table: str) -> set[str]:
    """The versions a SQLite file's tracking table records (none without the table)."""
    import sqlite3

    from .sqlite_backup import open_database

    try:
        with contextlib.closing(open_database(database, "ro")) as connection:
            return {str(row[0]) for row in connection.execute(f'SELECT version FROM "{table}"')}
    except sqlite3.Error as error:
        if "no such table" in str(error):  # no tracking table yet
            return set()
        raise DatabaseError(f"cannot read the copy {database}: {error}") from None


def unified_diff(before: str, after: str, before_name: str, after_name: str) -> str:
    """A unified diff of two texts, marking a last line without a newline as diff does."""
    import difflib

    shown = difflib.unified_diff(before.splitlines(keepends=True),
                                 after.splitlines(keepends=True), before_name, after_name)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in shown)


def _sql_cap() -> int:
    from .journal import SQL_CAP

    return SQL_CAP


def _kept_downs(backend: Backend, versions: Sequence[str]) -> dict[str, JournalEntry | None]:
    """For each version, the journal's newest row that recorded it as applied (a run, a
    baseline or an accepted checksum; None: not there): journal.vanished_step uses it
    only if it is a run whose checksum the tracking row still holds."""
    if not backend.journal_exists():
        return dict.fromkeys(versions)
    from .journal import RECORDING_OUTCOMES

    kept: dict[str, JournalEntry | None] = {}
    for version in versions:
        runs = backend.read_journal(version=version, direction=UP)
        kept[version] = next((run for run in runs if run.outcome in RECORDING_OUTCOMES), None)
    return kept


def _prepare(plan: Plan, backend: Backend, keep_statements: bool) -> list[PreparedFile]:
    """Read the headers of the plan's versions (every problem at once), then read, split
    and check its files. ``prepare`` is imported here: a no-op run never needs it."""
    from .prepare import prepare

    with_headers = read_headers([step.migration for step in plan.steps])
    steps = tuple(step._replace(migration=migration)
                  for step, migration in zip(plan.steps, with_headers, strict=True))
    return prepare(plan._replace(steps=steps), backend, keep_statements=keep_statements)
