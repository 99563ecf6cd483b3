"""The command line: argparse, output, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from . import __version__
from .terminal import HelpFormatter, LiveProgress, Output

# typing.TYPE_CHECKING without importing typing, which costs 4 ms of a 28 ms --help
# (benchmarks/run.py, startup). Type checkers know the name; at run time the block is
# skipped, and the API modules are imported only when a command needs them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

    from .api import Migrator, RunResult
    from .config import Settings
    from .errors import SqlmigError
    from .runner import StatementProgress, StepResult

    # migrate or rollback, given the per-file and per-statement progress callbacks
    Run = Callable[[Callable[[StepResult], None], StatementProgress | None], RunResult]

# The exit codes of errors.py, here too so that --help imports nothing more.
EXIT_OK, EXIT_FAILED = 0, 1

DESCRIPTION = "Declarative SQL-file database migrations (plain SQL, checksums, locks)."
EPILOG = """exit codes: 0 success; 1 the operation failed (a statement failed, verify found
drift, lock timeout); 2 bad usage, configuration or migration files.
settings (before or after the command): option > environment (SIBILA_SQLMIG_DATABASE,
SIBILA_SQLMIG_MIGRATIONS, SIBILA_SQLMIG_TABLE, SIBILA_SQLMIG_LOCK_WAIT, SIBILA_SQLMIG_LOCK,
SIBILA_SQLMIG_WAIT) > sibila_sqlmig.yaml > DATABASE_URL > default."""


def _add_settings(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The settings every command takes, accepted before the command and after it.

    After the command they have no defaults (SUPPRESS), so that one given before
    it (``sibila-sqlmig --database URL status``) is not reset by the subcommand.
    """
    default = None if defaults else argparse.SUPPRESS
    flag = False if defaults else argparse.SUPPRESS
    group = parser.add_argument_group("settings")
    # Repeated for many databases. After the command it has a name of its own, so that
    # main() sees both sides (argparse would merge them into one list).
    group.add_argument("--database", metavar="URL", default=default, action="append",
                       dest="database" if defaults else "database_after",
                       help="sqlite:///file.db, postgresql://..., mysql://... or a file path; "
                       "repeat it to run on many databases (README: Many databases)")
    group.add_argument("--migrations", metavar="DIR", default=default,
                       help="the migrations folder")
    group.add_argument("--config", metavar="FILE", default=default, help="config file "
                       "(default: sibila_sqlmig.yaml here or in a parent folder)")
    group.add_argument("--table", metavar="NAME", default=default,
                       help="tracking table (schema_migrations)")
    group.add_argument("--lock-wait", "--lock-timeout", dest="lock_wait", metavar="SECONDS",
                       type=float, default=default,
                       help="how long to wait for another run's migration lock (default 60; "
                       "--lock-timeout is its older name)")
    group.add_argument("--lock", choices=("advisory", "table"), default=default,
                       help="the migration lock: the engine's session lock (default), or a "
                       "leased row in <table>_lock, which works behind PgBouncer")
    group.add_argument("--wait", metavar="SECONDS", type=float, default=default,
                       help="wait this long for the database to accept connections "
                       "(default 0)")
    fleet = parser.add_argument_group("many databases (README: Many databases)")
    fleet.add_argument("--databases-from", metavar="FILE", default=default,
                       help="one database URL per line (# comments); with status, verify, "
                       "migrate, rollback, baseline, repair")
    fleet.add_argument("--jobs", metavar="N", type=int, default=default,
                       help="how many databases at once (default 1)")
    fleet.add_argument("--canary", metavar="K", type=int, default=default,
                       help="run the first K databases alone first; if one fails, touch no "
                       "other")
    fleet.add_argument("--keep-going", action="store_true", default=flag,
                       help="after a database fails, go on with the others (default: start "
                       "no new one)")
    parser.add_argument("-q", "--quiet", action="store_true", default=flag,
                        help="print errors only")
    parser.add_argument("-v", "--verbose", action="store_true", default=flag,
                        help="print more detail")


def _add_run_options(command: argparse.ArgumentParser) -> None:
    """The options migrate and rollback share: their output, backup and schema dump."""
    command.add_argument("--json", action="store_true",
                         help="print the result (or, with --dry-run, the plan) as JSON")
    command.add_argument("--no-backup", action="store_true",
                         help="SQLite: take no backup of the database file before the run")
    command.add_argument("--dump", metavar="FILE",
                         help="write the schema dump (as `dump` does) after the run")
    command.add_argument("--no-dump", action="store_true",
                         help="write no schema dump, whatever sibila_sqlmig.yaml's dump: says")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sibila-sqlmig`` (also used by the docs test)."""
    parser = argparse.ArgumentParser(prog="sibila-sqlmig", description=DESCRIPTION,
                                     epilog=EPILOG,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_settings(parser, defaults=True)
    # An explicit prog spares argparse formatting a usage line on every run.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     prog="sibila-sqlmig")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text, description=help_text,
                                      formatter_class=HelpFormatter)
        _add_settings(command, defaults=False)
        return command

    status = add("status", "show applied, pending, edited, missing and unverified versions")
    status.add_argument("--json", action="store_true", help="print JSON")

    migrate = add("migrate", "apply pending versions in order")
    migrate.add_argument("--to", metavar="VERSION", help="stop after this version")
    migrate.add_argument("--dry-run", action="store_true",
                         help="show the statements that would run, as split, with lines")
    migrate.add_argument("--out-of-order", action="store_true",
                         help="also apply pending versions older than the newest applied")
    _add_run_options(migrate)

    rollback = add("rollback", "run down.sql of the newest applied versions")
    which = rollback.add_mutually_exclusive_group()
    which.add_argument("--steps", metavar="N", type=int, help="how many versions (default 1)")
    which.add_argument("--to", metavar="VERSION", help="roll back every version after this")
    rollback.add_argument("--dry-run", action="store_true", help="show what would run")
    _add_run_options(rollback)

    create = add("create", "write a new version folder NNN_slug/")
    create.add_argument("description", help='what the change does, e.g. "Add users table"')

    verify = add("verify", "for CI: exit 1 when an applied version was edited or is missing")
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.add_argument("--allow-empty", action="store_true",
                        help="pass on a database where no version is applied yet")
    verify.add_argument("--git-base", metavar="REF",
                        help="no database: compare with the versions at git REF (edited, "
                        "removed, new ones numbered before REF's newest)")
    verify.add_argument("--out-of-order", action="store_true",
                        help="with --git-base: allow new versions numbered before REF's newest")
    verify.add_argument("--drift", action="store_true",
                        help="also compare the live schema with a scratch database built from "
                        "the applied versions; exit 1 naming what was made, changed or "
                        "dropped by hand")
    verify.add_argument("--scratch", metavar="URL",
                        help="with --drift: an empty database to build in (default: a "
                        "temporary one beside the database, dropped afterwards)")

    check = add("check", "prove each down.sql on a scratch database: up, down, up again, "
                "comparing the schema each time; exit 1 naming each difference")
    check.add_argument("--scratch", metavar="URL",
                       help="an empty database to use (default: a temporary one beside the "
                       "database, dropped afterwards; SQLite: a temporary file)")
    check.add_argument("--json", action="store_true", help="print JSON")

    dump = add("dump", "print (or write) a deterministic schema file of the database, with "
               "the applied versions")
    dump.add_argument("--out", metavar="FILE", help="write it to FILE instead of printing it")

    history = add("history", "the journal: every run of every file, newest first")
    history.add_argument("version", metavar="VERSION", nargs="?",
                         help="only this version's runs")
    history.add_argument("--limit", metavar="N", type=int, help="at most N rows")
    history.add_argument("--json", action="store_true", help="print JSON")

    diff = add("diff", "the up.sql that ran (kept by the journal) against the file now; "
               "exit 1 when they differ")
    diff.add_argument("version", metavar="VERSION", help="the applied version to compare")

    lint = add("lint", "check up.sql and down.sql against the lint rules (docs/lint.md); "
               "exit 2 on an error")
    lint.add_argument("versions", metavar="VERSION", nargs="*",
                      help="only these versions (default: all)")
    lint.add_argument("--json", action="store_true", help="print JSON")
    lint.add_argument("--format", choices=("text", "github"), default="text",
                      help="github: annotations for GitHub Actions")

    restore = add("restore", "SQLite: put back the newest backup (or FILE), after backing up "
                  "the database as it is")
    restore.add_argument("file", metavar="FILE", nargs="?",
                         help="the backup to put back (default: the newest of a migrate or "
                         "rollback)")

    baseline = add("baseline", "record versions up to VERSION as applied without running them")
    baseline.add_argument("version", metavar="VERSION",
                          help="the newest version to record (it and those before it)")
    baseline.add_argument("--json", action="store_true", help="print JSON")

    repair = add("repair", "accept the checksums on disk and fill NULL ones")
    repair.add_argument("--forget-missing", action="store_true",
                        help="also delete the rows of applied versions whose folder is gone")
    repair.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # As every setting, --database after the command wins over one before it; repeated
    # on one side, it names many databases (README: Many databases).
    args.database = getattr(args, "database_after", None) or args.database
    from .errors import SqlmigError  # after parsing: --help and --version never need it

    out = Output(sys.stdout, args.quiet, args.verbose)
    if args.verbose:  # the library's DEBUG lines (connecting, the lock, each statement)
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(name)s: %(message)s")
    fleet = bool(args.databases_from or len(args.database or ()) > 1 or args.jobs is not None
                 or args.canary is not None or args.keep_going)
    try:
        if fleet:  # README: Many databases
            from .fleet_cli import run

            with _sigterm_as_ctrl_c(True):
                return run(args, out, _message, _error_dict)
        args.database = args.database[0] if args.database else None
        return _COMMANDS[args.command](args, out)
    except SqlmigError as error:
        out.clear_drawn()
        print(out.paint("error:", "31") + " " + _message(error), file=sys.stderr)
        if error.backup is not None:
            print(f"The backup taken before this run is {error.backup} (`sibila-sqlmig "
                  "restore` puts it back).", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        out.clear_drawn()
        if fleet:  # a second Ctrl-C: the first one let the running files finish
            print("interrupted again: stopped at once. Each database rolls back the file it "
                  "was running; the files that had finished stay applied. Rerun to finish "
                  "(`sibila-sqlmig status` shows where each database stands).",
                  file=sys.stderr, flush=True)
            out.close()
            os._exit(130)  # the worker threads are blocked in the driver; do not join them
        if args.command == "check" or getattr(args, "drift", False):
            print("interrupted: the scratch database was dropped; the database itself was "
                  "not written to.", file=sys.stderr)
            return 130
        print("interrupted: the file that was running was rolled back and not recorded "
              "(a 'transaction: false' file keeps the statements that had run); "
              "`sibila-sqlmig status` shows where things stand", file=sys.stderr)
        return 130
    finally:
        out.close()


def settings_of(args: argparse.Namespace, database: str | None) -> Settings:
    """The settings the command line gives (options > environment > yaml > default)."""
    from .config import load_settings

    return load_settings(database=database, migrations=args.migrations,
                         config=args.config, table=args.table,
                         lock_wait=args.lock_wait, lock=args.lock, wait=args.wait,
                         backup=False if getattr(args, "no_backup", False) else None,
                         dump="" if getattr(args, "no_dump", False)
                         else getattr(args, "dump", None),
                         relative_paths=True)  # this process never changes folder


def _migrator(args: argparse.Namespace, out: Output, *,
              database: str | None = None) -> Migrator:
    from .api import Migrator  # deferred: --help and --version need none of it

    def notify(text: str) -> None:
        if out.quiet:
            return
        out.clear_drawn()
        with contextlib.suppress(BrokenPipeError):  # nobody reads stderr: go on waiting
            print(text, file=sys.stderr, flush=True)

    settings = settings_of(args, database or args.database)
    for notice in settings.notices:
        notify(notice)
    return Migrator(settings, notify=notify)


def _status(args: argparse.Namespace, out: Output) -> int:
    from .model import State
    from .planner import drift_problems

    result = _migrator(args, out).status()
    if args.json:
        out.json(result.to_dict())
        return EXIT_OK
    out.line(f"database: {result.database}   table: {result.table}")
    rows = result.report.entries
    if not rows:
        out.line("No versions on disk and none applied.")
    colours = {State.APPLIED: "32", State.PENDING: "33", State.EDITED: "31",
               State.MISSING: "31", State.UNVERIFIED: "36"}
    states = [entry.state.value + (" (out of order)" if entry.out_of_order else "")
              for entry in rows]
    width = max(map(len, states), default=0)
    for entry, state in zip(rows, states, strict=True):
        applied_at = entry.row.applied_at if entry.row and entry.row.applied_at else ""
        # The versions are the command's result: shown with --quiet too.
        out.line(f"  {entry.version:<8} {out.paint(state.ljust(width), colours[entry.state])} "
                 f"{applied_at[:19]:<19}  {entry.description}", always=True)
    counts = ", ".join(f"{len(result.report.having(state))} {state.value}" for state in State
                       if result.report.having(state))
    out.line(counts)
    for line in drift_problems(result.report):
        out.line(line)
    for entry in rows:
        if entry.migration is not None and not entry.migration.written:
            out.line(f"  {entry.version}: {entry.migration.up.location} holds no SQL statement "
                     "yet; write the change before migrate.")
    return EXIT_OK


def _show_plan(result: RunResult, out: Output, args: argparse.Namespace) -> None:
    if args.json:
        out.json(result.to_dict())
        return
    verb = "apply" if result.direction == "up" else "roll back"
    for warning in result.warnings:
        out.line(warning)
    if not result.planned:
        out.line(f"Nothing to {verb}.", always=True)
    for prepared in result.planned:
        mode = "one transaction" if prepared.transactional else "transaction: false"
        statements = prepared.statements or ()  # a dry run keeps them all
        out.line(f"would {verb} {prepared.version} {prepared.description} "
                 f"({prepared.path}, {len(statements)} statement"
                 f"{'' if len(statements) == 1 else 's'}, {mode})", always=True)
        for statement in statements:
            text = statement.sql.replace("\n", "\n" + " " * 12)
            out.line(f"  line {statement.line:>4}: {text}", always=True)


# The Migrator is made inside the run, so that --json reports bad settings too.
def _migrate(args: argparse.Namespace, out: Output) -> int:
    return _run(args, out, "up", lambda progress, on_statement: _migrator(args, out).migrate(
        to=args.to, dry_run=args.dry_run, out_of_order=args.out_of_order, progress=progress,
        on_statement=on_statement))


def _rollback(args: argparse.Namespace, out: Output) -> int:
    return _run(args, out, "down", lambda progress, on_statement: _migrator(args, out).rollback(
        steps=args.steps, to=args.to, dry_run=args.dry_run, progress=progress,
        on_statement=on_statement))


def _run(args: argparse.Namespace, out: Output, direction: str, run: Run) -> int:
    """migrate or rollback: the run, then its plan (dry run), JSON or summary."""
    if args.json and not args.dry_run:
        return _run_as_json(out, direction, run)
    live = LiveProgress(out)
    result = run(live.step, live.statement if out.can_redraw else None)
    if args.dry_run:
        _show_plan(result, out, args)
        return EXIT_OK
    # The warnings were said before the run (Migrator's notify, on stderr).
    done = [step for step in result.steps if not step.skipped]
    if direction == "up":
        out.line(f"{len(done)} version(s) applied." if done else
                 "Nothing to apply: the database is up to date.")
    else:
        out.line(f"{len(done)} version(s) rolled back." if done else "Nothing to roll back.")
    return _dump_failed(result, out)


def _dump_failed(result: RunResult, out: Output) -> int:
    """The run stands; a schema dump after it that failed is said, with its exit code."""
    if result.dump_error is None:
        return EXIT_OK
    out.clear_drawn()
    print(out.paint("error:", "31") + " the run succeeded, but writing the schema dump "
          f"failed: {_message(result.dump_error)}", file=sys.stderr)
    return result.dump_error.exit_code


def _run_as_json(out: Output, direction: str, run: Run) -> int:
    """One JSON document for a real run, also when it fails (then with the error; the
    message still goes to stderr and the exit code is the same as without --json)."""
    from .errors import SqlmigError

    steps: list[StepResult] = []

    def failed(error: dict[str, Any]) -> None:
        out.json({"direction": direction, "dry_run": False, "ok": False,
                  "steps": [step.to_dict() for step in steps], "error": error})

    try:
        result = run(steps.append, None)
    except SqlmigError as error:
        failed(_error_dict(error))
        raise
    except KeyboardInterrupt:
        failed({"type": "KeyboardInterrupt", "message": "interrupted", "exit_code": 130})
        raise
    out.json(result.to_dict())
    return _dump_failed(result, out)


def _message(error: SqlmigError) -> str:
    """An error's message as the command line words it (options, not Python keywords)."""
    from .errors import UsageError

    return error.for_command_line() if isinstance(error, UsageError) else str(error)


def _error_dict(error: SqlmigError) -> dict[str, Any]:
    """What went wrong, for JSON: the message, and where, when the error knows."""
    found: dict[str, Any] = {"type": type(error).__name__, "message": _message(error),
                             "exit_code": error.exit_code}
    for name in ("version", "line", "database_message"):
        if hasattr(error, name):
            found[name] = getattr(error, name)
    if hasattr(error, "path"):
        found["file"] = str(error.path)
    if error.backup is not None:
        found["backup"] = error.backup
    if hasattr(error, "left_applied"):
        found["left_applied"] = [{"line": done.line, "sql": done.sql}
                                 for done in error.left_applied]
    return found


def _create(args: argparse.Namespace, out: Output) -> int:
    folder = _migrator(args, out).create(args.description)
    out.line(f"created {folder}/ (migration.yaml, up.sql, down.sql)")
    return EXIT_OK


def _verify(args: argparse.Namespace, out: Output) -> int:
    from .planner import drift_problems

    if args.git_base is not None:
        return _verify_git(args, out)
    if args.out_of_order:
        from .errors import UsageError

        raise UsageError("--out-of-order only applies with --git-base REF.")
    if args.scratch is not None and not args.drift:
        from .errors import UsageError

        raise UsageError("--scratch only applies with --drift.")
    with _sigterm_as_ctrl_c(args.drift):
        result = _migrator(args, out).verify(allow_empty=args.allow_empty, drift=args.drift,
                                             scratch=args.scratch)
    if args.json:
        out.json(result.to_dict())
    else:
        for line in drift_problems(result.report):
            out.line(line, always=True)
        if result.drift is not None:
            for line in result.drift.problems():
                out.line(f"  {line}", always=True)
            for line in result.drift.notes:
                out.line(f"note: {line}")
            if result.drift.ok:
                out.line(f"drift: none (the schema is what the {len(result.drift.built)} "
                         "applied version(s) make)")
        if result.nothing_applied:
            out.line(f"  {result.nothing_applied}", always=True)
        if result.unverified:
            out.line(f"unverified (no checksum stored, e.g. from Sibila's earlier system): "
                     f"{', '.join(result.unverified)}; `sibila-sqlmig repair` records them.")
        out.line("verify: OK" if result.ok else "verify: FAILED", always=True)
    return EXIT_OK if result.ok else EXIT_FAILED


def _verify_git(args: argparse.Namespace, out: Output) -> int:
    # No database: its URL (perhaps a $DATABASE_URL meant for something else) is not read.
    no_database = _migrator(args, out, database="sqlite:///:memory:")
    result = no_database.verify_against_git(args.git_base, out_of_order=args.out_of_order)
    if args.json:
        out.json(result.to_dict())
        return EXIT_OK if result.ok else EXIT_FAILED
    for line in result.problems():
        out.line(f"  {line}", always=True)
    for line in result.notes():
        out.line(f"note: {line}")
    if result.added:
        out.line(f"new since {result.ref}: {', '.join(result.added)}")
    if result.late_allowed:
        out.line(f"new, numbered before {result.ref}'s newest ({result.base_newest}), allowed "
                 f"by --out-of-order: {', '.join(result.late_allowed)}")
    out.line(f"verify --git-base {result.ref}: {'OK' if result.ok else 'FAILED'}", always=True)
    return EXIT_OK if result.ok else EXIT_FAILED


def _check(args: argparse.Namespace, out: Output) -> int:
    from .catalog.check import CHECKED, NOT_CHECKED

    def progress(checked: Any) -> None:
        if args.json:
            return
        colour = "32" if checked.outcome == CHECKED else "33" \
            if checked.outcome == NOT_CHECKED else "31"
        note = f" ({checked.note})" if checked.note and checked.outcome == NOT_CHECKED else ""
        out.line(f"  {checked.version:<8} {out.paint(checked.outcome, colour)}  "
                 f"{checked.description}{note}", always=checked.outcome not in
                 (CHECKED, NOT_CHECKED))
        for finding in checked.findings:
            out.line(f"      {checked.version}: {finding.text}", always=True)

    with _sigterm_as_ctrl_c(True):
        result = _migrator(args, out).check(scratch=args.scratch, progress=progress)
    document = result.to_dict()
    if args.json:
        out.json(document)
        return EXIT_OK if result.ok else EXIT_FAILED
    shown = ", ".join(f"{number} {outcome}" for outcome, number in document["counts"].items())
    out.line(f"check: {'OK' if result.ok else 'FAILED'} ({shown or 'no versions'}; "
             f"{result.seconds:.2f} s on {result.scratch})", always=True)
    return EXIT_OK if result.ok else EXIT_FAILED


@contextlib.contextmanager
def _sigterm_as_ctrl_c(active: bool) -> Iterator[None]:
    """SIGTERM (a cancelled CI job, a container stopped) interrupts like Ctrl-C: while a
    scratch database exists (check, verify --drift), so that it is dropped on the way
    out; in a fleet run, so that no new target starts and the running ones stop after
    their current file (a second SIGTERM, like a second Ctrl-C, stops at once)."""
    import signal
    import threading

    # Python sets handlers in the main thread only (main() may run in another, from a
    # caller's code); a SIGTERM the parent set to be ignored stays ignored.
    if not active or threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dump(args: argparse.Namespace, out: Output) -> int:
    text = _migrator(args, out).dump(args.out)
    if args.out is None:
        out.write(text)
    else:
        out.line(f"wrote {args.out}")
    return EXIT_OK


def _history(args: argparse.Namespace, out: Output) -> int:
    result = _migrator(args, out).history(args.version, limit=args.limit)
    if args.json:
        out.json(result.to_dict())
        return EXIT_OK
    if not result.journal_found:
        out.line(f"No journal in {result.database} yet ({result.journal}): it is created by "
                 "the next migrate, rollback, baseline or repair that changes something.")
        return EXIT_OK
    if not result.entries:
        out.line("No runs recorded" + (f" of version {args.version}." if args.version else "."))
    colours = {"applied": "32", "rolled back": "33", "failed": "31"}
    if result.entries:
        out.line(f"  {'run':>5} {'started (UTC)':<19}  {'version':<8} {'dir':<4} "
                 f"{'outcome':<17} {'seconds':>9} {'statements':>10}  user@host  description")
    for entry in result.entries:
        took = f"{entry.seconds:.3f} s" if entry.seconds is not None else ""
        shown = entry.outcome + (f" (try {entry.attempt})" if entry.attempt > 1 else "")
        outcome = out.paint(shown.ljust(17), colours.get(entry.outcome, "36"))
        out.line(f"  {entry.id:>5} {entry.started_at[:19]}  {entry.version:<8} "
                 f"{entry.direction:<4} {outcome} {took:>9} {entry.statements:>10}  "
                 f"{entry.user}@{entry.host}  {entry.description}", always=True)
        if entry.error:
            out.line(f"        {entry.error.splitlines()[0]}", always=True)
    return EXIT_OK


def _diff(args: argparse.Namespace, out: Output) -> int:
    result = _migrator(args, out).diff(args.version)
    if result.diff:
        out.line(result.diff.rstrip("\n"), always=True)  # the diff is the result
    if result.note:
        out.line(f"{result.version}: {result.note}.")
    if result.same:
        out.line(f"{result.version}: up.sql is as it was when it ran ({result.applied.started_at} "
                 "UTC).")
    elif result.file is None:
        shown = "; above is the up.sql that ran" if result.diff else ""
        out.line(f"{result.version}: its folder is gone{shown}.", always=True)
    else:
        out.line(f"{result.version}: {result.file} differs from the up.sql that ran.",
                 always=True)
    return EXIT_OK if result.same else EXIT_FAILED


def _lint(args: argparse.Namespace, out: Output) -> int:
    from .errors import EXIT_USAGE

    result = _migrator(args, out).lint(args.versions)
    if args.json:
        out.json(result.to_dict())
        return EXIT_OK if result.ok else EXIT_USAGE
    shown = [found for found in result.findings if not found.suppressed]
    for found in shown:
        if args.format == "github":  # workflow commands: one annotation per finding
            text = f"{found.message}. {found.fix}".replace("%", "%25").replace("\n", "%0A")
            out.line(f"::{found.level} file={found.path},line={found.line},"
                     f"title={found.rule}::{text}", always=True)
        else:
            out.line(str(found), always=True)
    errors = len(result.errors)
    out.line(f"lint: {errors} error(s), {len(shown) - errors} warning(s) in {result.files} "
             f"file(s); {len(result.findings) - len(shown)} allowed by a -- sqlmig: comment.")
    return EXIT_OK if result.ok else EXIT_USAGE


def _restore(args: argparse.Namespace, out: Output) -> int:
    result = _migrator(args, out).restore(args.file)
    out.line(f"restored {result.restored_from}", always=True)
    if result.safety_backup:
        out.line(f"the database as it was is kept in {result.safety_backup} (restore that "
                 "file to undo this)")
    newest = result.applied[-1] if result.applied else "none"
    out.line(f"the database now records {len(result.applied)} applied version(s); the "
             f"newest is {newest}. `sibila-sqlmig status` compares it with the folder.")
    return EXIT_OK


def _baseline(args: argparse.Namespace, out: Output) -> int:
    marked = _migrator(args, out).baseline(args.version)
    if args.json:
        out.json({"recorded": marked})
    elif marked:
        out.line(f"recorded as applied without running: {', '.join(marked)}")
    else:
        out.line("Nothing to record: those versions are already recorded.")
    return EXIT_OK


def _repair(args: argparse.Namespace, out: Output) -> int:
    result = _migrator(args, out).repair(forget_missing=args.forget_missing)
    if args.json:
        out.json({key: list(value) for key, value in result._asdict().items()})
        return EXIT_OK
    for label, versions in (("checksum updated", result.updated),
                            ("checksum filled in", result.filled),
                            ("row deleted (folder gone)", result.forgotten)):
        if versions:
            out.line(f"{label}: {', '.join(versions)}")
    if not (result.updated or result.filled or result.forgotten):
        out.line("Nothing to repair.")
    if result.missing:
        out.line(f"applied but gone from the migrations folder: {', '.join(result.missing)}; "
                 "`sibila-sqlmig repair --forget-missing` deletes their rows.")
    return EXIT_OK


_COMMANDS = {
    "status": _status,
    "migrate": _migrate,
    "rollback": _rollback,
    "create": _create,
    "verify": _verify,
    "baseline": _baseline,
    "repair": _repair,
    "history": _history,
    "diff": _diff,
    "restore": _restore,
    "lint": _lint,
    "check": _check,
    "dump": _dump,
}
