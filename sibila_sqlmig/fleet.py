"""Many databases in one run (README: Many databases).

The migrations folder is read, split and linted once (``SharedFolder``); each
target then runs exactly as a single-database run does, with its own connection,
its own migration lock and one transaction per file. ``run_fleet`` schedules the
targets: ``jobs`` at once, the first ``canary`` alone first, and no new target
after a failure unless ``keep_going``. It never prints; ``on_done`` hears each
target as it finishes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import ConfigError, MigrationFilesError, SqlmigError, UsageError
from .log import logger

if TYPE_CHECKING:
    from .backends.base import Backend
    from .config import Settings
    from .model import Migration, Plan
    from .prepare import PreparedFile

# A target's outcome.
OK, UP_TO_DATE, FAILED, SKIPPED, INTERRUPTED = (
    "ok", "up to date", "failed", "skipped", "interrupted")
OUTCOMES = (OK, UP_TO_DATE, FAILED, INTERRUPTED, SKIPPED)


class Interrupted(SqlmigError):
    """The fleet run was interrupted: this target stopped after the file that was
    running had committed (or rolled back); the rest of its versions wait for a rerun.
    ``done``: the versions it ran before it stopped."""

    exit_code = 130

    def __init__(self, message: str, done: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.done = tuple(done)


class TargetResult(NamedTuple):
    """What one target did."""

    database: str  # its URL, the password hidden
    outcome: str  # OK, UP_TO_DATE, FAILED or SKIPPED
    seconds: float = 0.0
    versions: tuple[str, ...] = ()  # the versions it applied, rolled back or recorded
    detail: str = ""  # one line for the text output
    result: Any = None  # the command's own result (RunResult, StatusResult, ...)
    error: SqlmigError | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == FAILED


#: One target's work: given its settings and the shared folder, what it did
#: (outcome, versions, detail, the command's result); raise SqlmigError on failure.
Task = Callable[["Settings", "SharedFolder"], tuple[str, tuple[str, ...], str, Any]]


def read_database_list(path: Path, *, cwd: Path | None = None) -> list[str]:
    """The URLs of a ``--databases-from`` file: one per line; blank lines and ``#``
    comments are skipped. A relative SQLite path is relative to the working folder,
    as it is in ``--database``."""
    from .dburl import parse_database_url

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--databases-from {path}: no such file.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--databases-from {path}: cannot read it ({error}).") from None
    urls = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        # A comment after the URL needs a space before its #: a URL may hold one.
        url = re.split(r"\s+#", stripped, maxsplit=1)[0]
        # Checked now, so that a typo on line 40 stops the run before line 1 is touched.
        parse_database_url(url, base_dir=cwd or Path.cwd(), source=f"{path}:{number}")
        urls.append(url)
    if not urls:
        raise ConfigError(f"--databases-from {path}: the file names no database (one URL per "
                          "line; # starts a comment).")
    return urls


def check_targets(targets: Sequence[Settings]) -> None:
    """Refuse a database given twice, however spelled (a path and its sqlite:/// URL,
    the default port or not): two jobs would wait on each other's lock."""
    seen: dict[tuple[str, ...], int] = {}
    for index, settings in enumerate(targets, 1):
        key = settings.database.identity()
        if key in seen:
            raise UsageError(f"the database {settings.database.redacted()} is given twice "
                             f"(targets {seen[key]} and {index}); give each database once.")
        seen[key] = index


class SharedFolder:
    """The migrations folder as many targets see it, read once: its versions with
    their headers, and each file prepared (read, split, linted) once per dialect.

    Thread-safe: the fleet's jobs share one. Preparing is pure given the file, the
    direction, the dialect and the project's timeouts, which all targets share.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._discovered: dict[tuple[Any, ...], list[Migration] | MigrationFilesError] = {}
        self._prepared: dict[tuple[Any, ...], PreparedFile] = {}

    def discover(self, settings: Settings, *, unwritten_ok: bool) -> list[Migration]:
        """Every version of the folder, with its header (read once per folder and
        dialect; a problem in the folder is raised to every target)."""
        from .discovery import discover

        key = (settings.migrations_dir, settings.database.dialect, unwritten_ok)
        with self._lock:  # once: the other jobs wait for the first one's reading
            found = self._discovered.get(key)
            if found is None:
                try:
                    found = discover(settings.migrations_dir, settings.database.dialect,
                                     headers=True, unwritten_ok=unwritten_ok)
                except MigrationFilesError as error:
                    found = error
                self._discovered[key] = found
        if isinstance(found, MigrationFilesError):
            raise found
        return found

    def prepare(self, plan: Plan, backend: Backend, keep_statements: bool,
                prepare: Callable[[Plan, Backend, bool], list[PreparedFile]]
                ) -> list[PreparedFile]:
        """The plan's files prepared, each at most once per dialect (``prepare`` does
        the work for those not seen yet, every problem of them at once)."""

        def key(index: int) -> tuple[Any, ...] | None:
            step = plan.steps[index]
            if step.stored_down is not None:  # a vanished version: the journal's text
                return None
            return (plan.direction, step.migration.location, step.migration.up.checksum,
                    step.row_version, backend.dialect, keep_statements)

        keys = [key(index) for index in range(len(plan.steps))]
        missing = [index for index, found in enumerate(keys)
                   if found is None or found not in self._prepared]
        if missing:
            made = prepare(plan._replace(steps=tuple(plan.steps[i] for i in missing)),
                           backend, keep_statements)
            fresh = dict(zip(missing, made, strict=True))
            with self._lock:
                for index, prepared in fresh.items():
                    found = keys[index]
                    if found is not None:
                        self._prepared[found] = prepared
        else:
            fresh = {}
        return [fresh[index] if index in fresh else self._prepared[keys[index] or ()]
                for index in range(len(keys))]


def run_fleet(targets: Sequence[Settings], task: Task, *, jobs: int = 1, canary: int = 0,
              keep_going: bool = False, on_done: Callable[[TargetResult], None] | None = None,
              stop: threading.Event | None = None, folder: SharedFolder | None = None
              ) -> list[TargetResult]:
    """Run ``task`` on every target; return their results in the targets' order.

    ``jobs`` targets run at once. The first ``canary`` run before any other, and if
    one of them fails no other target is started. Otherwise, after a failure no new
    target starts (those running finish) unless ``keep_going``. Setting ``stop``
    (Ctrl-C) starts no new target; ``task`` is expected to stop its running ones
    between files (it raises ``Interrupted``). ``folder``: the SharedFolder the
    tasks are given (a new one by default).
    """
    if jobs < 1:
        raise UsageError("give 1 or more.", argument="jobs", value=jobs)
    if canary < 0:
        raise UsageError("give 0 or more.", argument="canary", value=canary)
    stop = stop if stop is not None else threading.Event()
    shared = folder if folder is not None else SharedFolder()
    results: dict[int, TargetResult] = {}
    why_skipped = ""

    def run_one(index: int) -> TargetResult:
        settings = targets[index]
        started = time.perf_counter()
        database = settings.database.redacted()
        try:
            outcome, versions, detail, result = task(settings, shared)
        except Interrupted as error:
            return TargetResult(database, INTERRUPTED, time.perf_counter() - started,
                                error.done, str(error))
        except SqlmigError as error:
            return TargetResult(database, FAILED, time.perf_counter() - started,
                                detail=str(error).splitlines()[0] if str(error) else "",
                                error=error)
        except Exception as error:  # a defect: this target fails, the others go on
            log = logger(__name__)
            if log is not None:
                log.exception("unexpected error on %s", database)
            failure = SqlmigError(f"unexpected {type(error).__name__}: {error} (a defect of "
                                  "sibila-sqlmig: please report it, with -v output)")
            return TargetResult(database, FAILED, time.perf_counter() - started,
                                detail=str(failure), error=failure)
        return TargetResult(database, outcome, time.perf_counter() - started, versions,
                            detail, result)

    def run_batch(pool: ThreadPoolExecutor, indexes: Sequence[int], stop_on_failure: bool
                  ) -> bool:
        """Run these targets, ``jobs`` at a time; False if one failed."""
        waiting = list(indexes)
        running: dict[Future[TargetResult], int] = {}
        all_ok = True
        while waiting or running:
            while waiting and len(running) < jobs and not stop.is_set() \
                    and (all_ok or not stop_on_failure):
                index = waiting.pop(0)
                running[pool.submit(run_one, index)] = index
            if not running:
                break
            try:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                if stop.is_set():  # a second Ctrl-C: the caller ends the process now
                    abandoned.set()
                    raise
                stop.set()  # the running targets stop after their current file
                continue
            for future in done:
                index = running.pop(future)
                result = future.result()
                results[index] = result
                all_ok = all_ok and not result.failed
                if on_done is not None:
                    on_done(result)
        return all_ok

    abandoned = threading.Event()
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sqlmig-target")
    try:
        canaries = range(min(canary, len(targets)))
        if not run_batch(pool, canaries, True):
            why_skipped = "not started: a canary failed"
        else:
            run_batch(pool, range(len(canaries), len(targets)), not keep_going)
            why_skipped = ("not started: an earlier target failed (--keep-going tries every "
                           "target)")
    finally:
        # After a second Ctrl-C nobody waits for the running files (the process ends;
        # each database rolls back the one it was running).
        pool.shutdown(wait=not abandoned.is_set(), cancel_futures=True)
    if stop.is_set():
        why_skipped = "not started: the run was interrupted"
    return [results.get(index) or TargetResult(targets[index].database.redacted(), SKIPPED,
                                               detail=why_skipped)
            for index in range(len(targets))]


def summary(results: Sequence[TargetResult]) -> dict[str, int]:
    """How many targets ended each way, plus ``targets`` in all."""
    counts = {"targets": len(results), **dict.fromkeys(OUTCOMES, 0)}
    for result in results:
        counts[result.outcome] += 1
    return counts
