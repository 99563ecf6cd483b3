"""Pure logic: the state of every version, and what to apply or roll back.

Versions on disk and rows in the tracking table are matched by their integer
value, so a legacy row "1" is the folder "001". No I/O happens here: every
input is a value (model.py), and the tests give it values made in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import DriftError, OutOfOrderError, RollbackRefused, UsageError
from .model import (
    DOWN,
    UP,
    AppliedRow,
    JournalEntry,
    Migration,
    Plan,
    PlanStep,
    State,
    StatusReport,
    VersionStatus,
)


def find_version(report: StatusReport, version: str) -> VersionStatus | None:
    """The entry whose version has the integer value of ``version``."""
    number = _version_number(version)
    for entry in report.entries:
        if (number is not None and entry.number == number) or entry.version == version:
            return entry
    return None


def _version_number(version: str) -> int | None:
    return int(version) if version.isdigit() else None


def build_status(migrations: Sequence[Migration], rows: Sequence[AppliedRow]) -> StatusReport:
    """Match folders to rows and give each version its state."""
    on_disk = {migration.number: migration for migration in migrations}
    entries: list[VersionStatus] = []
    matched: set[int] = set()
    for row in rows:
        number = _version_number(row.version)
        migration = on_disk.get(number) if number is not None else None
        if migration is None:
            entries.append(VersionStatus(row.version, number, State.MISSING, row=row))
            continue
        matched.add(migration.number)
        if row.checksum is None:
            state = State.UNVERIFIED
        elif row.checksum.lower() == migration.up.checksum:
            state = State.APPLIED
        else:
            state = State.EDITED
        entries.append(VersionStatus(migration.version, number, state, migration, row))
    newest = max((entry.number for entry in entries if entry.number is not None), default=None)
    for migration in migrations:
        if migration.number not in matched:
            late = newest is not None and migration.number < newest
            entries.append(VersionStatus(migration.version, migration.number, State.PENDING,
                                         migration, out_of_order=late))
    entries.sort(key=lambda entry: (entry.number is None, entry.number or 0, entry.version))
    return StatusReport(tuple(entries))


def resolve_version(report: StatusReport, version: str, *, argument: str) -> VersionStatus:
    """The entry named by a caller's ``to``/``only``/``version`` argument, or a
    UsageError naming that argument."""
    entry = find_version(report, version.strip())
    if entry is None:
        known = ", ".join(entry.version for entry in report.entries[-5:]) or "none"
        raise UsageError(f"no such version on disk or in the tracking table (the newest "
                         f"are: {known}).", argument=argument, value=version)
    return entry


def drift_problems(report: StatusReport) -> list[str]:
    """One line per edited or missing version, saying what to do about it."""
    lines = []
    for entry in report.having(State.EDITED):
        lines.append(f"  {entry.version} ({entry.description}): up.sql was edited after it was "
                     f"applied ({entry.migration.up.location if entry.migration else ''}); "
                     f"`sibila-sqlmig diff {entry.version}` shows the change. Restore "
                     "it (git checkout), or, if the edit was deliberate and the database "
                     "already matches it, run `sibila-sqlmig repair`.")
    for entry in report.having(State.MISSING):
        lines.append(f"  {entry.version} ({entry.description}): applied, but its folder is "
                     "not in the migrations folder. Restore it (a branch switch?); or, if the "
                     "journal kept its down.sql (it was applied by this release), roll it "
                     "back with `sibila-sqlmig rollback` when it is the newest; or run "
                     "`sibila-sqlmig repair --forget-missing` to drop its row.")
    return lines


def plan_migrate(report: StatusReport, *, target: str | None = None,
                 out_of_order: bool = False, only: str | None = None) -> Plan:
    """The pending versions to apply, in order (up to ``target``, or just ``only``);
    refuses drift and out-of-order versions."""
    limit = only_number = None
    if only is not None:
        entry = resolve_version(report, only, argument="only")
        if entry.state is not State.PENDING:
            raise UsageError(f"that version is {entry.state.value}, not pending.",
                             argument="only", value=only)
        only_number = entry.number
        older = [other.version for other in report.having(State.PENDING)
                 if (other.number or 0) < (entry.number or 0)]
        if older and not out_of_order:
            raise OutOfOrderError(
                f"only {only}: pending version(s) {', '.join(older)} come before it; applying "
                f"{only} alone would leave them out of order. Apply them first, or pass "
                "out_of_order=True if they do not depend on the order.")
    if target is not None:
        entry = resolve_version(report, target, argument="to")
        if entry.migration is None:
            raise UsageError("that version's folder is not on disk.", argument="to",
                             value=target)
        limit = entry.number
    drift = drift_problems(report)
    if drift:
        raise DriftError("migrate refused: applied versions differ from the files:\n"
                         + "\n".join(drift))
    pending = [entry for entry in report.having(State.PENDING)
               if (limit is None or (entry.number is not None and entry.number <= limit))
               and (only_number is None or entry.number == only_number)]
    late = [entry for entry in pending if entry.out_of_order]
    if late and not out_of_order:
        newest = max(report.recorded, key=lambda entry: entry.number or 0).version
        names = ", ".join(entry.version for entry in late)
        raise OutOfOrderError(
            f"migrate refused: pending version(s) {names} are older than the newest applied "
            f"version ({newest}). They were probably merged from another branch. Renumber "
            "them after the newest version (`sibila-sqlmig create` picks the next number), "
            "or apply them anyway with --out-of-order if they do not depend on the order.")
    return Plan(UP, tuple(PlanStep(entry.migration, entry.migration.version)
                          for entry in pending if entry.migration is not None))


def plan_rollback(report: StatusReport, *, steps: int | None = None,
                  target: str | None = None,
                  kept: Mapping[str, JournalEntry | None] | None = None) -> Plan:
    """The recorded versions to roll back, newest first.

    A version whose folder is gone is rolled back with the down.sql the journal kept
    when it was applied: ``kept`` maps its row's version to that journal entry (None
    where the journal has none); ``missing_versions`` names the versions to look up.
    """
    if steps is not None and target is not None:
        raise UsageError("Give steps or to (--steps or --to), not both.")
    if steps is not None and steps < 1:
        raise UsageError("give a number of versions of 1 or more.", argument="steps",
                         value=steps)
    recorded = sorted(report.recorded, key=lambda entry: entry.number or 0, reverse=True)
    if not recorded:
        raise RollbackRefused("Nothing to roll back: no version is recorded as applied.")
    if target is not None:
        limit = 0 if target.strip().isdigit() and int(target) == 0 else \
            resolve_version(report, target, argument="to").number or 0
        chosen = [entry for entry in recorded if (entry.number or 0) > limit]
    elif steps is not None and steps > len(recorded):
        applied = ", ".join(entry.version for entry in reversed(recorded))
        raise RollbackRefused(
            f"--steps {steps}: only {len(recorded)} version(s) are applied ({applied}); "
            f"nothing was rolled back. Give --steps {len(recorded)} (or --to 0) to roll "
            "them all back.")
    else:
        chosen = recorded[: steps or 1]
    plan = []
    for entry in chosen:
        assert entry.row is not None  # chosen among the recorded versions
        if entry.migration is None:
            from .journal import vanished_step

            plan.append(vanished_step(entry, (kept or {}).get(entry.row.version)))
        else:
            plan.append(PlanStep(entry.migration, entry.row.version))
    return Plan(DOWN, tuple(plan))


def missing_versions(report: StatusReport) -> list[str]:
    """The tracking rows of recorded versions whose folder is gone (as the rows spell
    them): a rollback looks their kept down.sql up in the journal."""
    return [entry.row.version for entry in report.having(State.MISSING)
            if entry.row is not None]


def plan_baseline(report: StatusReport, target: str) -> list[Migration]:
    """The unrecorded versions up to ``target`` to mark as applied without running them."""
    entry = resolve_version(report, target, argument="version")
    if entry.migration is None or entry.number is None:
        raise UsageError("that version's folder is not on disk.", argument="version",
                         value=target)
    limit = entry.number
    return [pending.migration for pending in report.having(State.PENDING)
            if pending.migration is not None and pending.migration.number <= limit]
