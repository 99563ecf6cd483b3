"""The planner, on values made in memory: no folder, no file, no database."""

from __future__ import annotations

import builtins
import io
import os
import pathlib
import sys
from collections.abc import Callable, Iterator

import pytest

from sibila_sqlmig.errors import DriftError, OutOfOrderError, RollbackRefused, UsageError
from sibila_sqlmig.model import (
    DOWN,
    UP,
    AppliedRow,
    Header,
    Migration,
    SqlFile,
    State,
)
from sibila_sqlmig.planner import (
    build_status,
    drift_problems,
    plan_baseline,
    plan_migrate,
    plan_rollback,
)


@pytest.fixture(autouse=True)
def no_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt of the package's code to read or list the disk fails the test: the
    planner is pure. (pytest itself still reads, to report a failure.)"""

    def refusing(original: Callable[..., object]) -> Callable[..., object]:
        def guard(*args: object, **kwargs: object) -> object:
            frame = sys._getframe(1)
            while frame is not None:  # the package, directly or through the stdlib
                module = frame.f_globals.get("__name__", "")
                if module.startswith("sibila_sqlmig"):
                    raise AssertionError(f"{module} touched the disk: {args!r}")
                frame = frame.f_back
            return original(*args, **kwargs)

        return guard

    for module, name in ((builtins, "open"), (io, "open"), (os, "open"), (os, "scandir"),
                         (os, "listdir"), (os, "stat"), (pathlib.Path, "open"),
                         (pathlib.Path, "stat")):
        monkeypatch.setattr(module, name, refusing(getattr(module, name)))
    yield


def migration(version: str, checksum: str | None = None, *,
              header: Header | None = None) -> Migration:
    """A version that exists only in memory."""
    location = f"/nowhere/{version}_v"
    up = SqlFile(f"{location}/up.sql", checksum or f"sum{int(version)}", (1, 1), "SELECT 1")
    return Migration(version, int(version), location, up, header)


def row(version: str, checksum: str | None = "", description: str = "") -> AppliedRow:
    if checksum == "":
        checksum = f"sum{int(version)}"
    return AppliedRow(version, description or f"row {version}", "2026-11-30 10:00:00", checksum)


def test_states_of_applied_pending_edited_missing_and_unverified() -> None:
    disk = [migration("001"), migration("002", "changed"), migration("003"),
            migration("005")]
    rows = [row("1"), row("002"), row("003", None), row("004")]
    report = build_status(disk, rows)
    assert [(entry.version, entry.state) for entry in report.entries] == [
        ("001", State.APPLIED), ("002", State.EDITED), ("003", State.UNVERIFIED),
        ("004", State.MISSING), ("005", State.PENDING)]
    assert report.entries[0].row == rows[0]  # the legacy row "1" is the folder "001"


def test_a_stored_checksum_in_upper_case_still_matches() -> None:
    report = build_status([migration("001", "abc")], [row("001", "ABC")])
    assert report.entries[0].state is State.APPLIED


def test_description_comes_from_the_header_when_read_else_from_the_row() -> None:
    read = migration("001", header=Header("From the header"))
    report = build_status([read, migration("002")], [row("001"), row("002")])
    assert [entry.description for entry in report.entries] == ["From the header", "row 002"]


def test_migrate_plans_pending_versions_in_order() -> None:
    report = build_status([migration("010"), migration("002"), migration("1000")], [])
    plan = plan_migrate(report)
    assert plan.direction == UP
    assert [(step.migration.version, step.row_version) for step in plan.steps] == [
        ("002", "002"), ("010", "010"), ("1000", "1000")]


def test_migrate_to_stops_at_the_target_and_refuses_an_unknown_one() -> None:
    report = build_status([migration("001"), migration("002"), migration("003")], [])
    assert plan_migrate(report, target="2").numbers == [1, 2]
    with pytest.raises(UsageError, match="to='9': no such version"):
        plan_migrate(report, target="9")


def test_migrate_refuses_drift_naming_each_version_and_the_fix() -> None:
    report = build_status([migration("001", "edited"), migration("003")],
                          [row("001"), row("002")])
    with pytest.raises(DriftError) as caught:
        plan_migrate(report)
    assert "001 (row 001): up.sql was edited" in str(caught.value)
    assert "002 (row 002): applied, but its folder is not" in str(caught.value)
    assert len(drift_problems(report)) == 2


def test_migrate_refuses_out_of_order_unless_asked() -> None:
    report = build_status([migration("001"), migration("002"), migration("003")],
                          [row("001"), row("003")])
    with pytest.raises(OutOfOrderError, match=r"002 are older than the newest applied "
                       r"version \(003\)"):
        plan_migrate(report)
    assert plan_migrate(report, out_of_order=True).numbers == [2]


def test_an_up_to_date_database_plans_nothing() -> None:
    report = build_status([migration("001")], [row("001")])
    assert plan_migrate(report).steps == ()


def test_rollback_plans_newest_first_with_the_row_as_spelled() -> None:
    report = build_status([migration("001"), migration("002"), migration("003")],
                          [row("1"), row("02"), row("003")])
    plan = plan_rollback(report, steps=2)
    assert plan.direction == DOWN
    assert [(step.migration.version, step.row_version) for step in plan.steps] == [
        ("003", "003"), ("002", "02")]
    assert plan_rollback(report).numbers == [3]
    assert plan_rollback(report, target="1").numbers == [3, 2]
    assert plan_rollback(report, target="0").numbers == [3, 2, 1]


def test_rollback_refusals() -> None:
    with pytest.raises(RollbackRefused, match="Nothing to roll back"):
        plan_rollback(build_status([migration("001")], []))
    gone = build_status([migration("001")], [row("001"), row("002")])
    with pytest.raises(RollbackRefused, match="Cannot roll back 002"):
        plan_rollback(gone)
    report = build_status([migration("001")], [row("001")])
    with pytest.raises(UsageError, match="steps=0: give a number"):
        plan_rollback(report, steps=0)
    with pytest.raises(UsageError, match="not both"):
        plan_rollback(report, steps=1, target="1")
    with pytest.raises(RollbackRefused, match=r"--steps 2: only 1 version\(s\) are applied "
                       r"\(001\); nothing was rolled back"):
        plan_rollback(report, steps=2)


def test_baseline_marks_unrecorded_versions_up_to_the_target() -> None:
    report = build_status([migration("001"), migration("002"), migration("003")],
                          [row("001")])
    assert [m.version for m in plan_baseline(report, "002")] == ["002"]
    with pytest.raises(UsageError, match="version='7': no such version"):
        plan_baseline(report, "7")


def test_only_one_version_refuses_to_jump_over_older_pending_ones() -> None:
    report = build_status([migration("001"), migration("002"), migration("003")],
                          [row("001")])
    assert plan_migrate(report, only="002").numbers == [2]
    with pytest.raises(OutOfOrderError, match=r"only 003: pending version\(s\) 002 come before"):
        plan_migrate(report, only="003")
    assert plan_migrate(report, only="003", out_of_order=True).numbers == [3]
    with pytest.raises(UsageError, match="only='001': that version is applied"):
        plan_migrate(report, only="001")


def test_usage_errors_name_the_argument_for_python_and_the_option_for_the_command_line(
        ) -> None:
    report = build_status([migration("001")], [])
    with pytest.raises(UsageError) as caught:
        plan_migrate(report, target="9")
    assert str(caught.value).startswith("to='9': no such version")
    assert caught.value.for_command_line().startswith("--to 9: no such version")
    with pytest.raises(UsageError) as caught:
        plan_baseline(report, "7")
    assert caught.value.for_command_line().startswith("baseline 7: no such version")


def test_the_no_disk_guard_catches_the_package_through_the_standard_library() -> None:
    from sibila_sqlmig import planner

    with pytest.raises(AssertionError, match=r"sibila_sqlmig\.planner touched the disk"):
        exec("pathlib.Path('/').exists()", {"__name__": planner.__name__, "pathlib": pathlib})
