"""The command line of a fleet run: many ``--database`` or ``--databases-from``.

Each command that reads (status, verify) or changes (migrate, rollback, baseline,
repair) runs once per target through ``fleet.run_fleet``; this module turns each
target's result into one line (or a JSON object) and the whole into a summary and
an exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EXIT_FAILED, UsageError
from .fleet import (
    FAILED,
    INTERRUPTED,
    OK,
    OUTCOMES,
    SKIPPED,
    UP_TO_DATE,
    Interrupted,
    SharedFolder,
    TargetResult,
    check_targets,
    read_database_list,
    run_fleet,
    summary,
)
from .terminal import Output

if TYPE_CHECKING:
    from .config import Settings
    from .fleet import Task
    from .runner import StepResult

#: The commands a fleet runs; the others work on one database.
FLEET_COMMANDS = ("status", "verify", "migrate", "rollback", "baseline", "repair")
READ_ONLY = ("status", "verify")


def run(args: argparse.Namespace, out: Output,
        error_text: Callable[[Any], str], error_dict: Callable[[Any], dict[str, Any]]) -> int:
    """Run ``args.command`` on every target; print a line per target and a summary."""
    if args.command not in FLEET_COMMANDS:
        raise UsageError(f"`{args.command}` works on one database; many databases "
                         f"(--database given more than once, --databases-from, --jobs, "
                         f"--canary, --keep-going) work with {', '.join(FLEET_COMMANDS)}.")
    if args.command == "verify" and args.git_base is not None:
        raise UsageError("verify --git-base reads no database: give no --database list.")
    if args.command in READ_ONLY and (args.canary or args.keep_going):
        raise UsageError(f"--canary and --keep-going are for the commands that change "
                         f"databases; `{args.command}` reads every target anyway.")
    urls = list(args.database or [])
    if args.databases_from:
        urls += read_database_list(Path(args.databases_from))
    if not urls:
        raise UsageError("no database given: use --database URL (repeated) or "
                         "--databases-from FILE.")
    targets = _target_settings(args, out, urls)
    check_targets(targets)
    folder = SharedFolder()
    # The folder is read once, before any target: a problem in it stops the run here,
    # with nothing touched (exit 2, as a single run).
    folder.discover(targets[0], unwritten_ok=args.command in READ_ONLY)
    stop = threading.Event()
    task = _task(args, stop, _notifier(out))

    def on_done(result: TargetResult) -> None:
        if not args.json:  # JSON: one document at the end
            _print_target(out, result, error_text)

    results = run_fleet(targets, task, jobs=1 if args.jobs is None else args.jobs,
                        canary=args.canary or 0,
                        keep_going=args.keep_going or args.command in READ_ONLY,
                        on_done=on_done, stop=stop, folder=folder)
    counts = summary(results)
    if args.json:
        out.json({"command": args.command, "ok": counts[FAILED] == 0 and not stop.is_set(),
                  "interrupted": stop.is_set(), "summary": counts,
                  "targets": [_target_dict(result, error_dict) for result in results]})
    else:
        _print_summary(out, results, counts, error_text, interrupted=stop.is_set())
    if stop.is_set():
        return 130
    failed = [result for result in results if result.failed]
    return max((result.error.exit_code if result.error is not None else EXIT_FAILED
                for result in failed), default=0)


def _target_settings(args: argparse.Namespace, out: Output, urls: Sequence[str]
                     ) -> list[Settings]:
    """One Settings per target: the settings resolved once (options, environment,
    sibila_sqlmig.yaml), each with its own database."""
    from .cli import settings_of
    from .dburl import parse_database_url

    settings = settings_of(args, urls[0])
    if settings.dump_file is not None and args.command in ("migrate", "rollback"):
        raise UsageError(f"a schema dump ({settings.dump_file}, from --dump or 'dump:' in "
                         "sibila_sqlmig.yaml) is one file: with many databases every target "
                         "would overwrite it. Give --no-dump, and run `sibila-sqlmig dump "
                         "--database URL --out FILE` for the one you want.")
    for notice in settings.notices:
        _notifier(out)(notice)
    here = Path.cwd()
    return [settings._replace(database=parse_database_url(url, base_dir=here,
                                                          source="the command-line option"))
            for url in urls]


def _notifier(out: Output) -> Callable[[str], None]:
    lock = threading.Lock()  # lines from several jobs never interleave
    said: set[str] = set()

    def notify(text: str) -> None:
        """Say a file's lint warning once (it is the same for every target); every
        other line (a lock wait, a backup, a retry) is each target's own."""
        if out.quiet:
            return
        line = text.split(": ", 1)[-1]  # without the target
        with lock, contextlib.suppress(BrokenPipeError):
            if _FILE_WARNING.match(line):
                if line in said:
                    return
                said.add(line)
            print(text, file=sys.stderr, flush=True)

    return notify


# A lint warning about a file: "migrations/002_x/up.sql:3: warning rule: ...", or a
# down.sql that rollback would refuse.
_FILE_WARNING = re.compile(r"\S+\.sql(:\d+)?: ")


def _task(args: argparse.Namespace, stop: threading.Event, notify: Callable[[str], None]
          ) -> Task:
    """The work of ``args.command`` on one target."""
    from .api import Migrator

    command = args.command

    def work(settings: Settings, folder: SharedFolder) -> tuple[str, tuple[str, ...], str, Any]:
        where = settings.database.redacted()
        migrator = Migrator(settings, shared_folder=folder,
                            notify=lambda text: notify(f"{where}: {text}"))

        done: list[str] = []

        def between_files(step: StepResult) -> None:
            if not step.skipped:
                done.append(step.version)
            # Ctrl-C: the file that just ran has committed with its row; stop here.
            if stop.is_set():
                raise Interrupted(f"interrupted after {step.version} {step.outcome}; "
                                  "rerun to finish this database", done)

        if command == "status":
            status = migrator.status()
            return OK, (), _status_counts(status), status
        if command == "verify":
            verified = migrator.verify(allow_empty=args.allow_empty, drift=args.drift)
            problems = [f"{name}: {', '.join(versions)}"
                        for name, versions in (("edited", verified.edited),
                                               ("missing", verified.missing)) if versions]
            if verified.nothing_applied:
                problems.append("no applied version is recorded")
            if verified.drift is not None and not verified.drift.ok:
                problems += verified.drift.problems()
            return (OK if verified.ok else FAILED, (),
                    "; ".join(problems) or "verify: OK", verified)
        if command in ("migrate", "rollback"):
            if command == "migrate":
                result = migrator.migrate(to=args.to, dry_run=args.dry_run,
                                          out_of_order=args.out_of_order, progress=between_files)
            else:
                result = migrator.rollback(steps=args.steps, to=args.to, dry_run=args.dry_run,
                                           progress=between_files)
            verb = "applied" if command == "migrate" else "rolled back"
            nothing = (UP_TO_DATE, "up to date") if command == "migrate" \
                else (OK, "nothing to roll back")
            if result.dry_run:
                planned = tuple(prepared.version for prepared in result.planned)
                if not planned:
                    return nothing[0], (), nothing[1], result
                return OK, planned, f"would be {verb}: {_versions(planned)}", result
            ran = tuple(step.version for step in result.steps if not step.skipped)
            if not ran:
                return nothing[0], (), nothing[1], result
            return OK, ran, f"{verb} {_versions(ran)}", result
        if command == "baseline":
            marked = tuple(migrator.baseline(args.version))
            return (OK if marked else UP_TO_DATE), marked, \
                f"recorded {_versions(marked)}" if marked else "already recorded", marked
        repaired = migrator.repair(forget_missing=args.forget_missing)
        changed = (*repaired.updated, *repaired.filled, *repaired.forgotten)
        return (OK if changed else UP_TO_DATE), tuple(changed), \
            f"repaired {_versions(changed)}" if changed else "nothing to repair", repaired

    return work


def _versions(versions: Sequence[str]) -> str:
    """``001, 002`` or, of many, ``12 versions (001 to 012)``."""
    if len(versions) <= 4:
        return ", ".join(versions)
    return f"{len(versions)} versions ({versions[0]} to {versions[-1]})"


def _status_counts(status: Any) -> str:
    from .model import State

    counts = {state: len(status.report.having(state)) for state in State}
    shown = ", ".join(f"{counts[state]} {state.value}" for state in
                      (State.APPLIED, State.PENDING, State.EDITED, State.MISSING))
    if counts[State.UNVERIFIED]:
        shown += f", {counts[State.UNVERIFIED]} unverified"
    return shown if status.table_found else shown + " (no tracking table yet)"


_COLOURS = {OK: "32", UP_TO_DATE: "32", FAILED: "31", SKIPPED: "33", INTERRUPTED: "33"}


def _print_target(out: Output, result: TargetResult, error_text: Callable[[Any], str]) -> None:
    detail = error_text(result.error).splitlines()[0] if result.error is not None \
        else result.detail
    took = f" ({result.seconds:.2f} s)" if result.outcome != SKIPPED else ""
    out.line(f"{out.paint(result.outcome.ljust(10), _COLOURS[result.outcome])} "
             f"{result.database}  {detail}{took}", always=result.failed)


def _print_summary(out: Output, results: Sequence[TargetResult], counts: dict[str, int],
                   error_text: Callable[[Any], str], *, interrupted: bool) -> None:
    skipped = [result for result in results if result.outcome == SKIPPED]
    if skipped:  # never started: no line of their own yet
        for result in skipped:
            _print_target(out, result, error_text)
    for result in results:
        if result.error is not None and "\n" in error_text(result.error):
            out.line(f"{result.database}:\n{error_text(result.error)}", always=True)
    shown = ", ".join(f"{counts[name]} {name}" for name in OUTCOMES if counts[name])
    ending = " (interrupted: rerun to finish)" if interrupted else ""
    out.line(f"{counts['targets']} database(s): {shown}{ending}", always=True)


def _target_dict(result: TargetResult, error_dict: Callable[[Any], dict[str, Any]]
                 ) -> dict[str, Any]:
    """One target for ``--json``: its outcome, versions, error and the command's own
    result (as the same command's ``--json`` gives it for one database)."""
    own = result.result
    if hasattr(own, "to_dict"):
        shown: Any = own.to_dict()
    elif hasattr(own, "_asdict"):
        shown = {key: list(value) for key, value in own._asdict().items()}
    elif isinstance(own, tuple):
        shown = list(own)
    else:
        shown = None
    return {"database": result.database, "outcome": result.outcome,
            "seconds": round(result.seconds, 6), "versions": list(result.versions),
            "detail": result.detail,
            "error": error_dict(result.error) if result.error is not None else None,
            "result": shown}
