"""Catalog benchmarks (README: Proving down.sql): `check` against `migrate` of the same
folder, and a catalog snapshot of a 500-table database, on each engine reachable.

    python benchmarks/catalog.py                   # SQLite, PostgreSQL, MariaDB; 3 runs
    python benchmarks/catalog.py --engines sqlite --runs 5

Cases (issue 8's targets in brackets):
  check     W1 (500 versions, each CREATE TABLE + CREATE INDEX, down DROP TABLE):
            `migrate` of a fresh database (the baseline, measured in the same run)
            against `check` of the same folder [check <= 5 x migrate on SQLite]
  snapshot  the catalog of the database W1 leaves (500 tables, 500 indexes), read
            in-process: cold (a new process's first read) and warm (read again,
            unchanged) [< 0.5 s on each engine]
Each run uses a fresh database (SQLite: a file in a temporary folder; PostgreSQL and
MariaDB: a database created on the server and dropped at the end).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from workloads import make_w1

SERVERS = {"postgresql": "postgresql://postgres@127.0.0.1:5432/",
           "mysql": "mysql://root@127.0.0.1:3306/"}


def write_w1(root: Path) -> Path:
    migrations = root / "w1"
    workload = make_w1()
    for number, ((slug, up), down) in enumerate(zip(workload.ups, workload.downs,
                                                    strict=True), 1):
        folder = migrations / f"{number:05d}_{slug}"
        folder.mkdir(parents=True)
        (folder / "migration.yaml").write_text(f"description: {slug}\n")
        (folder / "up.sql").write_text(up)
        (folder / "down.sql").write_text(down)
    (root / "config.yaml").write_text("backup: false\n")
    return migrations


@contextmanager
def fresh_database(engine: str, root: Path, server: str) -> Iterator[str]:
    """A URL of a new, empty database, dropped afterwards."""
    name = f"sqlmig_bench_{uuid.uuid4().hex[:10]}"
    if engine == "sqlite":
        yield f"sqlite:///{root / (name + '.db')}"
        return
    if engine == "postgresql":
        import psycopg

        admin = psycopg.connect(server + "postgres", autocommit=True)
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        return
    import pymysql

    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        yield server + name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def tool(root: Path, migrations: Path, url: str, *args: str) -> float:
    """Run the command line once; its wall time."""
    command = [sys.executable, "-m", "sibila_sqlmig", "--config", str(root / "config.yaml"),
               "--migrations", str(migrations), "--database", url, *args]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stdout}\n{done.stderr}")
    return took


SNAPSHOT = """
import sys, time
from sibila_sqlmig.config import load_settings
from sibila_sqlmig.backends import backend_for
backend = backend_for(load_settings(database=sys.argv[1], config=sys.argv[2], environ={}))
backend.connect(create=False)
started = time.perf_counter(); catalog = backend.catalog(); cold = time.perf_counter() - started
started = time.perf_counter(); backend.catalog(); warm = time.perf_counter() - started
print(cold, warm, len(catalog))
"""


def snapshot(root: Path, url: str) -> tuple[float, float, int]:
    done = subprocess.run([sys.executable, "-c", SNAPSHOT, url, str(root / "config.yaml")],
                          cwd=root, capture_output=True, text=True, check=True)
    cold, warm, objects = done.stdout.split()
    return float(cold), float(warm), int(objects)


def median(work: Callable[[], float], runs: int) -> float:
    return statistics.median(work() for _ in range(runs))


def measure(engine: str, root: Path, migrations: Path, runs: int
            ) -> list[tuple[str, str, str, str]]:
    server = SERVERS.get(engine, "")

    def migrate() -> float:
        with fresh_database(engine, root, server) as url:
            return tool(root, migrations, url, "migrate", "-q")

    def check() -> float:
        with fresh_database(engine, root, server) as url:
            return tool(root, migrations, url, "check", "-q")

    migrate_seconds = median(migrate, runs)
    check_seconds = median(check, runs)
    with fresh_database(engine, root, server) as url:
        tool(root, migrations, url, "migrate", "-q")
        samples = [snapshot(root, url) for _ in range(runs)]
    cold = statistics.median(sample[0] for sample in samples)
    warm = statistics.median(sample[1] for sample in samples)
    objects = samples[0][2]
    return [(engine, "migrate W1 (500 versions)", f"{migrate_seconds:.3f}", "baseline"),
            (engine, "check W1", f"{check_seconds:.3f}",
             f"{check_seconds / migrate_seconds:.2f} x migrate"
             + (" (target <= 5)" if engine == "sqlite" else "")),
            (engine, f"snapshot of W1's database ({objects} objects), cold", f"{cold:.3f}",
             "target < 0.5 s"),
            (engine, "snapshot again, unchanged", f"{warm:.3f}", "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="sqlite,postgresql,mysql")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="sqlmig-catalog-bench-") as work:
        root = Path(work)
        migrations = write_w1(root)
        os.environ.pop("SIBILA_SQLMIG_DATABASE", None)
        for engine in args.engines.split(","):
            rows += measure(engine, root, migrations, args.runs)
    width = max(len(row[1]) for row in rows)
    print(f"| engine     | {'case'.ljust(width)} | seconds | against |")
    print(f"|------------|{'-' * (width + 2)}|--------:|---------|")
    for engine, case, seconds, against in rows:
        print(f"| {engine:<10} | {case.ljust(width)} | {seconds:>7} | {against} |")


if __name__ == "__main__":
    main()
