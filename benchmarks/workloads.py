"""Generated SQL workloads shared by the benchmarks (deterministic: seeded), and the
workloads of run.py (W1, W2, the tiny ones) laid out for each tool."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

# Strings that make a naive splitter go wrong: ; -- /* */ quotes and backslashes.
NASTY = ["a;b", "x -- not a comment", "/* not; a comment */", "it''s", "C:\\dir\\",
         "semi;colon;s", "--;", "/*", "*/;"]


def insert_rows(table: str, first_id: int, count: int, rng: random.Random,
                nasty_share: float = 0.05) -> str:
    """One multi-row INSERT; about ``nasty_share`` of the strings hold tricky text."""
    rows = []
    for row_id in range(first_id, first_id + count):
        text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(60))
        if rng.random() < nasty_share:
            text = rng.choice(NASTY) + text
        rows.append(f"({row_id}, '{text}', {rng.randint(0, 10**6)}, '{text[::-1]}')")
    return f"INSERT INTO {table} (id, body, n, other) VALUES\n" + ",\n".join(rows) + ";\n"


def data_file(table: str, rows: int, rows_per_insert: int, seed: int,
              nasty_share: float = 0.05) -> str:
    """A data migration: CREATE TABLE then INSERTs of ``rows_per_insert`` rows."""
    rng = random.Random(seed)
    parts = [f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, body TEXT, n INTEGER, "
             "other TEXT);\n"]
    for first in range(0, rows, rows_per_insert):
        parts.append(insert_rows(table, first, min(rows_per_insert, rows - first), rng,
                                 nasty_share))
    return "".join(parts)


def write_version(root: Path, number: int, slug: str, up: str, down: str) -> None:
    folder = root / f"{number:05d}_{slug}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "migration.yaml").write_text(f"description: {slug}\n")
    (folder / "up.sql").write_text(up)
    (folder / "down.sql").write_text(down)


# --- the workloads of benchmarks/run.py -------------------------------------------------

@dataclass
class Workload:
    name: str
    ups: list[tuple[str, str]]  # (slug, sql)
    downs: list[str]


def make_w1() -> Workload:
    ups = [(f"table_{i}", f"CREATE TABLE t_{i} (id INTEGER PRIMARY KEY, name TEXT, n INTEGER);\n"
            f"CREATE INDEX idx_t_{i}_name ON t_{i} (name);\n") for i in range(1, 501)]
    return Workload("W1", ups, [f"DROP TABLE t_{i};\n" for i in range(1, 501)])


def make_w2() -> Workload:
    ups = [(f"data_{i}", data_file(f"d_{i}", rows=20_000, rows_per_insert=500, seed=i))
           for i in range(1, 21)]
    return Workload("W2", ups, [f"DROP TABLE d_{i};\n" for i in range(1, 21)])


def make_tiny(count: int) -> Workload:
    ups = [("tiny_table", "CREATE TABLE tiny (a INTEGER);\n")]
    ups += [(f"tiny_{i}", f"INSERT INTO tiny VALUES ({i});\n") for i in range(2, count + 1)]
    downs = ["DROP TABLE tiny;\n"] + [f"DELETE FROM tiny WHERE a = {i};\n"
                                     for i in range(2, count + 1)]
    return Workload(f"tiny{count}", ups, downs)


def lay_out(workload: Workload, work: Path) -> Path:
    """Write the workload in each tool's layout under ``work`` (once); returns its folder.

    ``ours/`` holds a folder per version, ``dbmate/`` and ``yoyo/`` their files,
    and ``raw.sql`` all the up SQL in one transaction.
    """
    root = work / workload.name
    if (root / "done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("ours", "dbmate", "yoyo"):
        (root / sub).mkdir(parents=True)
    with open(root / "raw.sql", "w") as raw:
        raw.write("BEGIN;\n")
        pairs = zip(workload.ups, workload.downs, strict=True)
        for number, ((slug, up), down) in enumerate(pairs, 1):
            name = f"{number:05d}_{slug}"
            folder = root / "ours" / name
            folder.mkdir()
            (folder / "migration.yaml").write_text(f"description: {slug}\n")
            (folder / "up.sql").write_text(up)
            (folder / "down.sql").write_text(down)
            (root / "dbmate" / f"{name}.sql").write_text(
                f"-- migrate:up\n{up}\n-- migrate:down\n{down}")
            (root / "yoyo" / f"{name}.sql").write_text(up)
            (root / "yoyo" / f"{name}.rollback.sql").write_text(down)
            raw.write(up)
        raw.write("COMMIT;\n")
    (root / "done").write_text("")
    return root
