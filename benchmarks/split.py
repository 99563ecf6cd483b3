"""Splitting throughput and peak memory: ours vs sqlparse.split vs SQLite's executescript.

    python benchmarks/split.py            # sqlparse measured on a 2 MB sample
    python benchmarks/split.py --full     # sqlparse on the whole files (minutes)

Prints a table; every ratio is against numbers measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import statistics
import time
import tracemalloc
from collections.abc import Callable

from workloads import data_file  # benchmarks/ is on sys.path when this script runs

from sibila_sqlmig.splitting import split_sql

MB = 1024 * 1024


def big_file() -> str:
    """About 50 MB of 500-row INSERTs, 5% of strings with ; -- /* quotes backslashes."""
    return data_file("big", rows=360_000, rows_per_insert=500, seed=1)


def one_insert() -> str:
    """One 5 MB INSERT whose strings hold thousands of ';'."""
    return data_file("one", rows=32_000, rows_per_insert=32_000, seed=2, nasty_share=0.5)


def timed(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_memory(work: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def executescript(text: str) -> None:
    connection = sqlite3.connect(":memory:")
    connection.executescript(text)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="run sqlparse on whole files")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import sqlparse

    print(f"{'file':<16}{'size MB':>9}  {'splitter':<28}{'seconds':>9}{'MB/s':>9}"
          f"{'peak/file':>11}")
    for name, text in (("50 MB INSERTs", big_file()), ("5 MB one INSERT", one_insert())):
        size = len(text.encode()) / MB
        ours = timed(lambda text=text: split_sql(text, "sqlite"), args.repeat)
        ours_peak = peak_memory(lambda text=text: split_sql(text, "sqlite"))
        raw = timed(lambda text=text: executescript(text), max(1, args.repeat // 2))
        sample = text if args.full else text[: 2 * MB]
        sample_mb = len(sample.encode()) / MB
        theirs = timed(lambda sample=sample: sqlparse.split(sample), 1)
        rows = [
            ("sibila_sqlmig split_sql", ours, size, f"{ours_peak / (size * MB):.2f}x"),
            (f"sqlparse.split ({'full' if args.full else '2 MB sample'})", theirs, sample_mb,
             ""),
            ("sqlite3 executescript", raw, size, ""),
        ]
        for label, seconds, megabytes, peak in rows:
            print(f"{name:<16}{size:>9.1f}  {label:<28}{seconds:>9.3f}"
                  f"{megabytes / seconds:>9.1f}{peak:>11}")
        speedup = (size / ours) / (sample_mb / theirs)
        print(f"{'':<25}ours: {speedup:.0f}x sqlparse's throughput, "
              f"{ours / raw:.2f}x executescript's time")


if __name__ == "__main__":
    main()
