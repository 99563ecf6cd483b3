"""Generated SQL workloads shared by the benchmarks (deterministic: seeded)."""

from __future__ import annotations

import random
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
