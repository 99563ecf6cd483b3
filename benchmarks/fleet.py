"""Fleet benchmarks (README: Many databases): one process for many databases against
a shell loop of one process per database, measured side by side in the same run.

    python benchmarks/fleet.py                        # every case, 3 runs each
    python benchmarks/fleet.py --cases loop,status --runs 5
    python benchmarks/fleet.py --postgres postgresql://postgres@127.0.0.1:5432/

Cases (issue 10's targets in brackets):
  loop      60 SQLite files x 10 small versions: `migrate --databases-from --jobs 2`
            against 60 separate `migrate` processes run one after another (what a
            shell loop does), and against raw: the same files executed with
            sqlite3's executescript in one process [fleet <= 0.5 x the loop]
  status    1,000 SQLite files, all applied: a no-op `status --databases-from`
            (--jobs 1 and --jobs 4) [< 5 s]
  postgres  100 PostgreSQL databases, all applied: a no-op `migrate
            --databases-from --jobs 8` [< 10 s]; the databases are created on the
            --postgres server and dropped at the end
Runs in a temporary folder; medians of --runs runs (each loop/fleet run on fresh files).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

VERSIONS = 10


def write_folder(root: Path) -> Path:
    """Ten small versions: a table, an index, a few rows."""
    migrations = root / "migrations"
    for number in range(1, VERSIONS + 1):
        folder = migrations / f"{number:03d}_table_{number}"
        folder.mkdir(parents=True)
        (folder / "migration.yaml").write_text(f"description: table {number}\n")
        (folder / "up.sql").write_text(
            f"CREATE TABLE t{number} (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
            f"CREATE INDEX t{number}_name ON t{number} (name);\n"
            f"INSERT INTO t{number} (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');\n")
        (folder / "down.sql").write_text(f"DROP TABLE t{number};\n")
    (root / "config.yaml").write_text("backup: false\n")
    return migrations


def tool(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "sibila_sqlmig", "--config", str(root / "config.yaml"),
            "--migrations", str(root / "migrations"), *args]


def run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n"
                         f"{done.stdout}\n{done.stderr}")


def timed(work: Callable[[], None], runs: int, before: Callable[[], None] | None = None
          ) -> float:
    """The median of ``runs`` timings of ``work`` (``before`` untimed, each run)."""
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def fresh_files(root: Path, count: int) -> list[Path]:
    folder = root / "dbs"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    paths = [folder / f"tenant_{n:04d}.db" for n in range(count)]
    (root / "list.txt").write_text("".join(f"{path}\n" for path in paths))
    return paths


def raw_sqlite(paths: list[Path], migrations: Path) -> None:
    """The floor: each file's SQL executed as it is, in one process, no bookkeeping."""
    scripts = [(folder / "up.sql").read_text() for folder in sorted(migrations.iterdir())]
    for path in paths:
        connection = sqlite3.connect(path)
        for script in scripts:
            connection.executescript(f"BEGIN;\n{script}\nCOMMIT;")
        connection.close()


def case_loop(root: Path, runs: int) -> list[tuple[str, float, str]]:
    count = 60
    holder: list[list[Path]] = [[]]

    def fresh() -> None:
        holder[0] = fresh_files(root, count)

    def loop() -> None:
        for path in holder[0]:
            run(tool(root, "migrate", "--database", str(path)), root)

    fleet = timed(lambda: run(tool(root, "migrate", "--databases-from",
                                   str(root / "list.txt"), "--jobs", "2"), root), runs, fresh)
    separate = timed(loop, runs, fresh)
    raw = timed(lambda: raw_sqlite(holder[0], root / "migrations"), runs, fresh)
    return [(f"{count} SQLite x {VERSIONS} versions: raw executescript, one process", raw,
             "baseline"),
            (f"{count} SQLite x {VERSIONS} versions: shell loop, {count} processes", separate,
             f"{separate / raw:.1f} x raw"),
            (f"{count} SQLite x {VERSIONS} versions: one run, --jobs 2", fleet,
             f"{fleet / separate:.2f} x loop (target <= 0.5)")]


def case_status(root: Path, runs: int) -> list[tuple[str, float, str]]:
    count = 1000
    fresh_files(root, count)
    run(tool(root, "migrate", "--databases-from", str(root / "list.txt"), "--jobs", "4"), root)
    rows = []
    for jobs in ("1", "4"):
        took = timed(lambda jobs=jobs: run(tool(root, "status", "--databases-from",
                                                 str(root / "list.txt"), "--jobs", jobs),
                                            root), runs)
        rows.append((f"{count} SQLite, no-op status, --jobs {jobs}", took,
                     "target < 5 s"))
    return rows


def case_postgres(root: Path, runs: int, server: str) -> list[tuple[str, float, str]]:
    import psycopg

    count = 100
    base = server.rstrip("/")
    names = [f"sqlmig_bench_{uuid.uuid4().hex[:8]}_{n}" for n in range(count)]
    admin = psycopg.connect(base + "/postgres", autocommit=True)
    try:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
        (root / "pg.txt").write_text("".join(f"{base}/{name}\n" for name in names))
        listing = str(root / "pg.txt")
        run(tool(root, "migrate", "--databases-from", listing, "--jobs", "8"), root)
        took = timed(lambda: run(tool(root, "migrate", "--databases-from", listing,
                                      "--jobs", "8"), root), runs)
        return [(f"{count} PostgreSQL databases, no-op migrate, --jobs 8", took,
                 "target < 10 s")]
    finally:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="loop,status,postgres")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/",
                        help="a server where databases may be created (its URL without a "
                        "database, or with one that is ignored)")
    args = parser.parse_args()
    cases = args.cases.split(",")
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="sqlmig-fleet-bench-") as work:
        root = Path(work)
        write_folder(root)
        if "loop" in cases:
            rows += case_loop(root, args.runs)
        if "status" in cases:
            rows += case_status(root, args.runs)
        if "postgres" in cases:
            server = args.postgres if args.postgres.count("/") <= 3 \
                else args.postgres.rsplit("/", 1)[0]
            rows += case_postgres(root, args.runs, server)
    width = max(len(name) for name, _, _ in rows)
    print(f"| {'case'.ljust(width)} | seconds | against |")
    print(f"|{'-' * (width + 2)}|--------:|---------|")
    for name, seconds, against in rows:
        print(f"| {name.ljust(width)} | {seconds:7.3f} | {against} |")


if __name__ == "__main__":
    main()
