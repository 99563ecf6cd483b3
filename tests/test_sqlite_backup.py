"""Backups of a SQLite database before a run, their rotation, and restore: real files."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sibila_sqlmig.errors import DatabaseError, UsageError
from sibila_sqlmig.sqlite_backup import (
    NothingToRestore,
    list_backups,
    restore_backup,
    should_back_up,
    take_backup,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def make_db(path: Path, *, wal: bool = False) -> Path:
    with sqlite3.connect(path, isolation_level=None) as connection:
        if wal:
            connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO items (name) VALUES ('one'), ('two')")
    connection.close()
    return path


def content(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, by table name."""
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {table: connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in tables}
    finally:
        connection.close()


def change(path: Path) -> None:
    with sqlite3.connect(path, isolation_level=None) as connection:
        connection.execute("CREATE TABLE extra (x)")
        connection.execute("INSERT INTO extra VALUES (1)")
        connection.execute("DELETE FROM items WHERE name = 'one'")
    connection.close()


def test_backup_then_restore_gives_back_the_content_before_the_change(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    before = content(db)
    backup = take_backup(db, versions=["003", "004", "007"], direction="up", keep=5)
    assert backup.parent == tmp_path
    assert backup.name.startswith("app.db.") and backup.name.endswith(
        ".before-up-003-007.sqlite-backup")
    change(db)
    assert content(db) != before
    result = restore_backup(db, keep=5)
    assert result.restored_from == backup
    assert content(db) == before
    assert [info.direction for info in list_backups(db)] == ["restore", "up"]
    assert list_backups(db)[1].versions == "003-007"


def test_one_version_and_no_version_names(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    down = take_backup(db, versions=["005"], direction="down", keep=5, now=T0)
    assert down.name == "app.db.20240501T120000000000Z.before-down-005.sqlite-backup"
    info = list_backups(db)[0]
    assert (info.taken_at, info.direction, info.versions) == (T0, "down", "005")


@pytest.mark.parametrize("wal", [False, True])
def test_a_backup_while_another_connection_holds_a_read_transaction(tmp_path: Path,
                                                                    wal: bool) -> None:
    db = make_db(tmp_path / "app.db", wal=wal)
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    assert len(reader.execute("SELECT * FROM items").fetchall()) == 2
    backup = take_backup(db, versions=["001"], direction="up", keep=5, timeout=5)
    reader.execute("COMMIT")
    reader.close()
    assert content(backup) == content(db)


@pytest.mark.parametrize("wal", [False, True])
def test_an_uncommitted_write_elsewhere_is_not_in_the_backup(tmp_path: Path, wal: bool) -> None:
    db = make_db(tmp_path / "app.db", wal=wal)
    before = content(db)
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO items (name) VALUES ('uncommitted')")
    backup = take_backup(db, versions=["001"], direction="up", keep=5, timeout=5)
    writer.execute("COMMIT")
    writer.close()
    assert content(backup) == before
    assert len(content(db)["items"]) == 3


def test_a_wal_database_s_committed_log_is_in_the_backup_which_stands_alone(
        tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db", wal=True)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("PRAGMA wal_autocheckpoint = 0")  # the new rows stay in app.db-wal
    other.execute("INSERT INTO items (name) VALUES ('in the log')")
    assert (tmp_path / "app.db-wal").stat().st_size > 0
    backup = take_backup(db, versions=["001"], direction="up", keep=5)
    other.close()
    assert ("in the log",) in [row[1:] for row in content(backup)["items"]]
    assert backup.read_bytes()[18:20] == b"\x01\x01"  # not WAL: no -wal/-shm needed
    assert sorted(path.name for path in tmp_path.iterdir()
                  if path.name.startswith(backup.name)) == [backup.name]
    change(db)
    restore_backup(db, backup, keep=5)
    assert ("in the log",) in [row[1:] for row in content(db)["items"]]
    with sqlite3.connect(db) as connection:  # the database stays in WAL mode
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()


def test_rotation_keeps_the_newest_and_never_touches_other_files(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    other = make_db(tmp_path / "app.sqlite")  # the same stem: its backups are its own
    unrelated = [tmp_path / name for name in (
        "notes.txt", "app.db.old", "app.db.20240101T000000000000Z.before-up-001.bak",
        "app.20240101T000000000000Z.before-up-001.sqlite-backup")]
    for path in unrelated:
        path.write_text("keep me")
    others = [take_backup(other, versions=[f"{day:03d}"], direction="up", keep=9,
                          now=T0 - timedelta(days=day)) for day in range(3)]
    made = [take_backup(db, versions=[f"{minute:03d}"], direction="up", keep=2,
                        now=T0 + timedelta(minutes=minute)) for minute in range(5)]
    assert [info.path for info in list_backups(db)] == [made[4], made[3]]
    assert all(path.exists() for path in [*unrelated, *others])
    assert [info.path for info in list_backups(other)] == others


def test_keep_must_be_at_least_one(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    with pytest.raises(UsageError, match="keep=0") as caught:
        take_backup(db, versions=["001"], direction="up", keep=0)
    assert caught.value.exit_code == 2
    assert list_backups(db) == []


def test_two_backups_in_one_second_or_one_microsecond_get_distinct_sorted_names(
        tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    first = take_backup(db, versions=["001"], direction="up", keep=9)
    change(db)
    second = take_backup(db, versions=["001"], direction="up", keep=9)
    same = []
    for name in ("three", "four"):
        with sqlite3.connect(db) as connection:
            connection.execute("INSERT INTO items (name) VALUES (?)", (name,))
        connection.close()
        same.append(take_backup(db, versions=["002"], direction="up", keep=9, now=T0))
    assert len({first, second, *same}) == 4
    assert first.name < second.name
    assert same[0].name < same[1].name  # the later one moved on by a microsecond
    assert [info.path for info in list_backups(db)] == [second, first, same[1], same[0]]


def test_a_backup_identical_to_one_before_the_same_versions_is_not_kept_twice(
        tmp_path: Path) -> None:
    """A deploy's workers each back up the same file: one backup, so that the backups of
    earlier deploys are not rotated away."""
    db = make_db(tmp_path / "app.db")
    earlier = [take_backup(db, versions=[version], direction="up", keep=3)
               for version in ("001", "002")]
    crowd = [take_backup(db, versions=["003", "005"], direction="up", keep=3)
             for _ in range(5)]
    assert len(set(crowd)) == 1
    assert [info.path for info in list_backups(db)] == [crowd[0], earlier[1], earlier[0]]
    assert take_backup(db, versions=["003", "004"], direction="down", keep=9) not in crowd
    change(db)  # the same versions, another state: a backup of its own
    assert take_backup(db, versions=["003", "005"], direction="up", keep=9) != crowd[0]


def test_runs_backing_up_in_the_same_microsecond_each_keep_a_whole_backup(
        tmp_path: Path) -> None:
    """Eight runs at once, one clock reading: none replaces another's backup or fails;
    each returns a whole backup; a copy identical to one already there is not kept."""
    db = make_db(tmp_path / "app.db")
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: take_backup(db, versions=["001"], direction="up",
                                                   keep=99, now=T0), range(8)))
    kept = [info.path for info in list_backups(db)]
    assert all(path in kept and content(path) == content(db) for path in made if path)
    assert None not in made and sorted(kept) == sorted(set(made))
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["app.db", *(
        path.name for path in kept)])  # no temporary copy left


def test_without_hard_links_a_backup_is_renamed_into_place(tmp_path: Path,
                                                          monkeypatch: Any) -> None:
    """FAT, exFAT and some network shares refuse os.link: the copy is renamed instead."""
    db = make_db(tmp_path / "app.db")

    def no_hard_links(source: Any, target: Any, **_: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)
    first = take_backup(db, versions=["001"], direction="up", keep=9, now=T0)
    change(db)
    second = take_backup(db, versions=["001"], direction="up", keep=9, now=T0)
    assert first is not None and second is not None and first != second
    assert content(second) == content(db) != content(first)
    assert take_backup(db, versions=["001"], direction="up", keep=9) == second  # identical
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["app.db", first.name, second.name])


def test_rotation_sweeps_temporary_copies_a_killed_run_left(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    old = tmp_path / ".app.db.k1ll3d.partial"
    old_journal = tmp_path / ".app.db.k1ll3d.partial-journal"
    fresh = tmp_path / ".app.db.runn1ng.partial"  # another run's copy, being made now
    other = tmp_path / ".app.sqlite.k1ll3d.partial"  # another database's
    for path in (old, old_journal, fresh, other):
        path.write_bytes(b"half a copy")
    two_hours_ago = time.time() - 7200
    for path in (old, old_journal, other):
        os.utime(path, (two_hours_ago, two_hours_ago))
    take_backup(db, versions=["001"], direction="up", keep=3)
    assert not old.exists() and not old_journal.exists()
    assert fresh.exists() and other.exists()


def test_a_copy_being_checked_is_not_rotated_away_by_another_run(tmp_path: Path) -> None:
    """Another run rotates (keep=1) while this one asks still_before about its copy: the
    copy is not a backup yet, so it survives, and this run's backup is a real file."""
    db = make_db(tmp_path / "app.db")
    others: list[Path | None] = []

    def another_run_meanwhile(copy: Path) -> bool:
        assert copy.exists() and copy not in [info.path for info in list_backups(db)]
        others.append(take_backup(db, versions=["002"], direction="up", keep=1))
        return copy.exists()

    mine = take_backup(db, versions=["001"], direction="up", keep=1,
                       still_before=another_run_meanwhile)
    assert mine is not None and mine.exists() and content(mine) == content(db)
    assert others[0] is not None and others[0].exists()  # the newer one: kept, and mine
    assert {info.path for info in list_backups(db)} == {mine, others[0]}


def test_a_copy_that_is_no_longer_before_the_run_leaves_no_file(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    older = take_backup(db, versions=["001"], direction="up", keep=1)
    assert take_backup(db, versions=["002"], direction="up", keep=1,
                       still_before=lambda copy: False) is None
    assert [info.path for info in list_backups(db)] == [older]  # nothing rotated for it
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["app.db", older.name])


def test_the_backup_has_the_mode_of_the_database(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    os.chmod(db, 0o640)
    backup = take_backup(db, versions=["001"], direction="up", keep=5)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o640


def test_restore_of_a_given_backup(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    older = take_backup(db, versions=["001"], direction="up", keep=9)
    first_state = content(db)
    change(db)
    take_backup(db, versions=["002"], direction="up", keep=9)
    with sqlite3.connect(db, isolation_level=None) as connection:
        connection.execute("INSERT INTO items (name) VALUES ('three')")
    connection.close()
    result = restore_backup(db, str(older), keep=9)
    assert result.restored_from == older
    assert content(db) == first_state


def test_restore_takes_a_safety_backup_that_undoes_it(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    backup = take_backup(db, versions=["001"], direction="up", keep=1)
    before = content(db)
    change(db)
    later = content(db)
    watcher = sqlite3.connect(db, isolation_level=None)  # open throughout, like an app
    assert len(watcher.execute("SELECT * FROM extra").fetchall()) == 1
    result = restore_backup(db, keep=1)
    assert result.safety_backup is not None
    assert ".before-restore.sqlite-backup" in result.safety_backup.name
    assert content(result.safety_backup) == later
    # keep=1, and yet neither the backup restored nor the safety backup was rotated away
    assert backup.exists() and result.safety_backup.exists()
    assert content(db) == before
    assert watcher.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchall() \
        == []  # the other connection sees the restored database
    # Without a path, a second restore puts back the same backup, not the safety one.
    assert restore_backup(db, keep=9).restored_from == backup
    assert content(db) == before
    restore_backup(db, result.safety_backup, keep=9)
    assert content(db) == later
    watcher.close()


def test_a_deleted_database_can_be_restored(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    before = content(db)
    take_backup(db, versions=["001"], direction="up", keep=5)
    db.unlink()
    result = restore_backup(db, keep=5)
    assert result.safety_backup is None
    assert content(db) == before


def test_restore_without_backups_names_the_folder(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    (tmp_path / "notes.txt").write_text("not a backup")
    with pytest.raises(NothingToRestore) as caught:
        restore_backup(db, keep=5)
    assert f"no backup of app.db found in {tmp_path}" in str(caught.value)
    assert caught.value.exit_code == 1  # like "nothing to roll back"


@pytest.mark.parametrize("bytes_", [b"", b"hello, not a database\n", b"SQLite format 3\x00" +
                                    b"\xff" * 2000])
def test_restore_refuses_a_file_that_is_not_a_sqlite_database(tmp_path: Path,
                                                              bytes_: bytes) -> None:
    db = make_db(tmp_path / "app.db")
    before = content(db)
    bogus = tmp_path / "bogus.sqlite-backup"
    bogus.write_bytes(bytes_)
    expected = f"the backup {re.escape(str(bogus))} (is not a SQLite|is damaged)"
    with pytest.raises(UsageError, match=expected):
        restore_backup(db, bogus, keep=5)
    assert content(db) == before
    assert list_backups(db) == []  # refused before the safety backup


def test_restore_refuses_a_missing_file(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    with pytest.raises(UsageError, match=re.escape("missing.sqlite-backup cannot be read")):
        restore_backup(db, tmp_path / "missing.sqlite-backup", keep=5)


def test_a_backup_waits_for_an_exclusive_lock_only_until_the_timeout(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # rollback-journal mode: readers are locked out
    started = time.monotonic()
    with pytest.raises(DatabaseError, match=re.escape("locked for over 0.3 seconds")):
        take_backup(db, versions=["001"], direction="up", keep=5, timeout=0.3)
    assert time.monotonic() - started < 5
    holder.execute("ROLLBACK")
    holder.close()
    assert [path.name for path in tmp_path.iterdir()] == ["app.db"]  # no temporary left


def test_should_back_up(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    assert should_back_up(str(db)) and should_back_up(db)
    assert not should_back_up(":memory:")
    assert not should_back_up("")
    assert not should_back_up(str(tmp_path / "new.db"))
    assert not should_back_up(str(tmp_path))  # a folder is not a database file
