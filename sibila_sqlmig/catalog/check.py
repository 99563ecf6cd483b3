"""``check`` and ``verify --drift``: migrations run on a scratch database, catalogs
compared (README: Proving down.sql).

``check`` proves each down.sql against its up.sql: for each version in order,
snapshot, up, snapshot, down, snapshot, up. The down must give back the first
snapshot and the second up the second. ``build_and_compare`` (drift) applies the
versions a live database records to a scratch database and compares the two
catalogs. Neither ever writes to the database the settings name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import MigrationFilesError, RollbackRefused, SqlmigError, StatementRefused
from ..model import DOWN, ROLLBACK_IRREVERSIBLE, ROLLBACK_NOOP, UP, Migration, Plan, PlanStep
from . import Catalog, Difference, compare

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..prepare import PreparedFile

# A version's outcome in ``check``.
CHECKED, DIFFERS, NOT_CHECKED, FAILED, NOT_REACHED = (
    "ok", "differs", "not checked", "failed", "not reached")


class Finding(NamedTuple):
    """One difference ``check`` found, in words, with the objects behind it."""

    phase: str  # "down" (down.sql against the snapshot before up) or "up again"
    text: str  # "down.sql leaves index idx_tags_tag on paragraph_tags"
    difference: Difference | None = None  # None: a statement failed

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"phase": self.phase, "message": self.text}
        if self.difference is not None:
            shown.update(self.difference.to_dict())
        return shown


class CheckedVersion(NamedTuple):
    """What ``check`` found of one version."""

    version: str
    description: str
    outcome: str  # CHECKED, DIFFERS, NOT_CHECKED, FAILED or NOT_REACHED
    findings: tuple[Finding, ...] = ()
    note: str = ""  # why it was not checked, or how it failed

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "description": self.description,
                "outcome": self.outcome, "note": self.note or None,
                "differences": [finding.to_dict() for finding in self.findings]}


class CheckResult(NamedTuple):
    """Every version's outcome, and the scratch database used."""

    scratch: str  # its URL, the password hidden
    versions: list[CheckedVersion]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(checked.outcome in (CHECKED, NOT_CHECKED) for checked in self.versions)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``check --json`` (documented in README)."""
        counts: dict[str, int] = {}
        for checked in self.versions:
            counts[checked.outcome] = counts.get(checked.outcome, 0) + 1
        return {"ok": self.ok, "scratch": self.scratch, "seconds": round(self.seconds, 3),
                "counts": counts, "versions": [checked.to_dict() for checked in self.versions]}


def _label(migration: Migration) -> str:
    header = migration.header
    return header.description if header is not None else ""


def run_check(backend: Backend, migrations: Sequence[Migration],
              prepare: Callable[[Plan, Backend], list[PreparedFile]],
              progress: Callable[[CheckedVersion], None] | None = None) -> list[CheckedVersion]:
    """Snapshot, up, snapshot, down, snapshot, up: each version in order, on
    ``backend`` (a scratch database, empty, tracking table created). A version whose
    up.sql fails stops the check: the later ones are NOT_REACHED."""
    from ..runner import run_files

    results: list[CheckedVersion] = []

    def record(checked: CheckedVersion) -> None:
        results.append(checked)
        if progress is not None:
            progress(checked)

    def not_reached(after: int, failed: str) -> None:
        for later in migrations[after + 1:]:
            record(CheckedVersion(later.version, _label(later), NOT_REACHED,
                                  note=f"not reached: {failed} failed"))

    before = backend.catalog()
    for index, migration in enumerate(migrations):
        version, description = migration.version, _label(migration)
        step = PlanStep(migration, migration.version)
        up = prepare(Plan(UP, (step,)), backend)  # a file problem stops check: exit 2
        try:
            run_files(backend, up)
        except SqlmigError as error:
            record(CheckedVersion(version, description, FAILED,
                                  (Finding(UP, f"up.sql fails: {_first(error)}"),),
                                  "up.sql fails on a database built by the versions before it"))
            not_reached(index, version)
            break
        after_up = backend.catalog()
        mode = migration.header.rollback if migration.header is not None else "sql"
        if mode in (ROLLBACK_NOOP, ROLLBACK_IRREVERSIBLE):
            record(CheckedVersion(version, description, NOT_CHECKED,
                                  note=f"rollback: {mode}; applied, not checked"))
            before = after_up
            continue
        try:
            down = prepare(Plan(DOWN, (step,)), backend)
        except RollbackRefused as error:  # a comment-only down.sql: irreversible
            record(CheckedVersion(version, description, NOT_CHECKED,
                                  note=f"not checked: {_first(error)}"))
            before = after_up
            continue
        except (StatementRefused, MigrationFilesError) as error:
            record(CheckedVersion(version, description, DIFFERS,
                                  (Finding(DOWN, f"rollback would refuse down.sql: "
                                                 f"{_first(error)}"),)))
            before = after_up
            continue
        outcome, findings, state, note = _down_and_up_again(
            backend, down, up, before, after_up, run_files)
        record(CheckedVersion(version, description, outcome, tuple(findings), note))
        if state is None:  # the database is in no known state: the check stops
            not_reached(index, version)
            break
        before = state
    return results


def _down_and_up_again(backend: Backend, down: list[PreparedFile], up: list[PreparedFile],
                       before: Catalog, after_up: Catalog,
                       run_files: Callable[[Backend, Sequence[PreparedFile]], Any]
                       ) -> tuple[str, list[Finding], Catalog | None, str]:
    """Run down.sql and up.sql again; compare. The outcome, its findings, the catalog
    the next version starts from (None: no known state, the check stops) and a note."""
    try:
        run_files(backend, down)
    except SqlmigError as error:
        finding = Finding(DOWN, f"down.sql fails: {_first(error)}")
        # Rolled back whole (a transaction), the database is as up.sql left it, and
        # the next versions can still be checked; else (MySQL's DDL) it is not.
        state = backend.catalog()
        if state == after_up:
            return FAILED, [finding], after_up, "down.sql fails; it was rolled back, so " \
                "the next versions are checked on what up.sql made"
        return FAILED, [finding], None, "down.sql fails and left part of its work"
    after_down = backend.catalog()
    findings = [Finding(DOWN, _DOWN.of(difference), difference)
                for difference in compare(before, after_down)]
    try:
        run_files(backend, up)
    except SqlmigError as error:
        findings.append(Finding("up again", "up.sql fails when run again after down.sql: "
                                f"{_first(error)}" + _leftover_hint(findings)))
        return FAILED, findings, None, "up.sql fails when run again after down.sql"
    again = backend.catalog()
    findings += [Finding("up again", _AGAIN.of(difference), difference)
                 for difference in compare(after_up, again)]
    return (DIFFERS if findings else CHECKED), findings, again, ""


def _first(error: SqlmigError) -> str:
    """An error's first line (it names the file and the line)."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _leftover_hint(findings: Sequence[Finding]) -> str:
    return " (down.sql left behind what up.sql creates)" if findings else ""


class _Words(NamedTuple):
    """How one comparison words an object added, removed or changed ({} is the
    object; ``expected`` names the side compared with)."""

    added: str
    removed: str
    changed: str
    expected: str

    def of(self, difference: Difference) -> str:
        thing = difference.subject.describe()
        if difference.change == "added":
            return self.added.format(thing)
        if difference.change == "removed":
            return self.removed.format(thing)
        return self.changed.format(thing) + difference.details(self.expected)


_DOWN = _Words("down.sql leaves {}", "down.sql drops {}, which was there before up.sql",
               "down.sql leaves {} changed: ", "before up.sql")
_AGAIN = _Words("up.sql run again after down.sql also gives {}",
                "up.sql run again after down.sql does not give {}",
                "up.sql run again after down.sql gives {} differently: ", "the first up.sql")
_DRIFT = _Words("made by hand (no migration creates it): {}",
                "dropped by hand (the migrations create it): {}", "changed by hand: {}: ",
                "the migrations give")


class DriftResult(NamedTuple):
    """``verify --drift``: the live catalog against a scratch database built from the
    versions the live one records; each difference is something done by hand."""

    differences: list[Difference]
    built: list[str]  # the versions applied to the scratch database
    notes: list[str]  # what the comparison could not account for
    build_error: str = ""  # the applied versions did not build a scratch database

    @property
    def ok(self) -> bool:
        return not self.differences and not self.build_error

    def problems(self) -> list[str]:
        """Each difference in words: made, dropped or changed by hand."""
        found = [drift_words(difference) for difference in self.differences]
        if self.build_error:
            found.insert(0, "the applied versions do not build an empty database, so drift "
                         "cannot be judged (nothing was written to this database): "
                         + self.build_error.splitlines()[0])
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "built": self.built, "notes": self.notes,
                "build_error": self.build_error or None, "problems": self.problems(),
                "differences": [difference.to_dict() for difference in self.differences]}


def drift_words(difference: Difference) -> str:
    """``verify --drift``: what was made, dropped or changed by hand."""
    return _DRIFT.of(difference)


def build(backend: Backend, migrations: Sequence[Migration],
          prepare: Callable[[Plan, Backend], list[PreparedFile]]) -> float:
    """Apply ``migrations`` in order to ``backend`` (a scratch database); the seconds
    it took. A failure raises, naming the file and line."""
    from ..runner import run_files

    started = time.perf_counter()
    if migrations:
        run_files(backend, prepare(Plan(UP, tuple(PlanStep(m, m.version)
                                                  for m in migrations)), backend))
    return time.perf_counter() - started
