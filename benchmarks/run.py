"""Benchmark harness: sibila_sqlmig against the raw limit, a floor, and peers, in one run.

    python benchmarks/run.py                       # everything reachable, 5 runs a case
    python benchmarks/run.py --engines sqlite --runs 3 --workloads W1,W3,startup
    python benchmarks/run.py --peers dbmate --out /tmp/bench.md   # skip yoyo; save table

Workloads (generated into benchmarks/.work/):
  W1  500 migrations, each CREATE TABLE + CREATE INDEX (down drops them)
  W2  20 migrations, each a table of 20,000 rows in INSERTs of 500 rows (~47 MB),
      5% of the strings holding ; -- /* */ and doubled quotes
  W3  no-op migrate and status with W1 applied
  W4  10,000 tiny migrations: apply all, then no-op migrate and status
      (and the no-op at 1,000, to show how it grows)
  startup  --help against python -c pass
Baselines: raw (the same SQL in one transaction: sqlite3 executescript, psql -f,
mariadb <) and floor (benchmarks/floor.py). Peers (--peers, default dbmate,yoyo;
"none" for none): dbmate (npm package, installed into benchmarks/.work/npm) and
yoyo-migrations (pip, benchmarks/.work/yoyo venv).
PostgreSQL: by default a throwaway cluster (benchmarks/pgcluster.py; initdb into
benchmarks/.work/pgcluster, default settings with fsync on, 127.0.0.1 at a free
port, deleted at the end); --postgres URL uses an existing server instead.
MariaDB: the server at --mysql.
Medians of --runs runs; a case whose single run exceeds --case-budget seconds
is not repeated (the runs column says so). Peak RSS is per process. The end
prints a markdown summary of all cases; --out PATH also writes it, with the
full results as JSON, to PATH.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pgcluster
from workloads import data_file

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
VENV = WORK / "venv"
PYTHON = str(VENV / "bin" / "python")  # ours as a user installs it (not editable)
BENCH_DB = "sqlmig_bench"
PEERS = ("dbmate", "yoyo")
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# --- workloads -----------------------------------------------------------------------------

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


def lay_out(workload: Workload) -> Path:
    """Write the workload in each tool's layout; returns its folder."""
    root = WORK / workload.name
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


# --- engines -------------------------------------------------------------------------------

@dataclass
class Engine:
    name: str
    server_url: str = ""

    def fresh(self) -> str:
        """An empty database; returns our URL for it."""
        if self.name == "sqlite":
            path = WORK / "bench.db"
            for leftover in (path, path.with_name("bench.db-journal")):
                leftover.unlink(missing_ok=True)
            return str(path)
        if self.name == "postgresql":
            import psycopg

            with psycopg.connect(self.server_url + "postgres", autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
                admin.execute(f"CREATE DATABASE {BENCH_DB}")
            return self.server_url + BENCH_DB
        admin = self.mysql_admin()
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
            cursor.execute(f"CREATE DATABASE {BENCH_DB}")
        admin.close()
        return self.server_url + BENCH_DB

    def mysql_admin(self) -> Any:
        import pymysql

        host, port = self.server_url.split("://")[1].split("@")[1].rstrip("/").split(":")
        return pymysql.connect(host=host, port=int(port), user="root", autocommit=True)

    def describe(self) -> str:
        """Which server (or library) this is; for PostgreSQL also its data folder and fsync."""
        if self.name == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        if self.name == "postgresql":
            return pgcluster.describe(self.server_url + "postgres")
        admin = self.mysql_admin()
        version = admin.get_server_info().removeprefix("5.5.5-")  # MariaDB's old-client prefix
        admin.close()
        return f"MySQL/MariaDB {version}"

    def reachable(self) -> bool:
        try:
            self.fresh()
        except Exception as error:  # a benchmark reports, it does not fail
            print(f"# {self.name}: not reachable ({str(error).strip()[:80]}); skipped")
            return False
        return True


def dbmate_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgres://") + "?sslmode=disable"
    return url if url.startswith("mysql://") else f"sqlite:{url}"


def yoyo_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+psycopg://")
    if url.startswith("mysql://"):
        return url  # yoyo's mysql:// uses PyMySQL
    return f"sqlite:///{url}"


# --- tools ---------------------------------------------------------------------------------

def install_ours() -> None:
    """A regular (non-editable) install of this checkout, with both drivers."""
    if not Path(PYTHON).exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    # psycopg2 is for the floor only; a no-op when already installed
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "psycopg[binary]",
                    "psycopg2-binary", "PyMySQL"], check=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--force-reinstall", str(HERE.parent)], check=True)


def install_peers(wanted: list[str]) -> dict[str, str]:
    """Paths of the executables of the ``wanted`` peers that could be installed."""
    found: dict[str, str] = {}
    if "dbmate" in wanted:
        npm_dir = WORK / "npm"
        dbmate = npm_dir / "node_modules" / ".bin" / "dbmate"
        if not dbmate.exists() and shutil.which("npm"):
            subprocess.run(["npm", "install", "--silent", "--prefix", str(npm_dir),
                            "dbmate@2"], check=False, capture_output=True)
        if dbmate.exists():
            found["dbmate"] = str(dbmate)
        else:
            print("# dbmate: npm not available or install failed; peer skipped")
    if "yoyo" in wanted:
        venv = WORK / "yoyo"
        yoyo = venv / "bin" / "yoyo"
        if not yoyo.exists():
            subprocess.run([PYTHON, "-m", "venv", str(venv)], check=False)
            subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "yoyo-migrations",
                            "psycopg[binary]", "pymysql"], check=False, capture_output=True)
        if yoyo.exists():
            found["yoyo"] = str(yoyo)
        else:
            print("# yoyo: pip install failed; peer skipped")
    return found


def commands(tool: str, url: str, root: Path, peers: dict[str, str], action: str) -> list[str]:
    """The command line of ``tool`` doing ``action`` (apply or status) on ``root``."""
    if tool == "ours":
        command = "migrate" if action == "apply" else "status"
        return [PYTHON, "-m", "sibila_sqlmig", command, "--database", url, "--migrations",
                str(root / "ours"), "--config", os.devnull, "-q"]
    if tool == "floor":
        return [PYTHON, str(HERE / "floor.py"), url, str(root / "ours")]
    if tool == "dbmate":
        verb = "up" if action == "apply" else "status"
        return [peers["dbmate"], "--url", dbmate_url(url), "--migrations-dir",
                str(root / "dbmate"), "--no-dump-schema", verb]
    if tool == "yoyo":
        verb = ["apply", "--batch"] if action == "apply" else ["list"]
        return [peers["yoyo"], *verb, "--no-config-file", "--database", yoyo_url(url),
                str(root / "yoyo")]
    raw = str(root / "raw.sql")
    if url.startswith("postgresql://"):
        return ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-o", os.devnull, "-f", raw, url]
    if url.startswith("mysql://"):
        return ["sh", "-c", f"mariadb -h 127.0.0.1 -u root {BENCH_DB} < {raw}"]
    script = "import sqlite3,sys; sqlite3.connect(sys.argv[1]).executescript(" \
             "open(sys.argv[2]).read())"
    return [PYTHON, "-c", script, url, raw]


@dataclass
class Sample:
    seconds: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    failed: str = ""
    wanted: int = 0  # runs asked for; fewer were made when one exceeded the case budget

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


# Linux carries a parent's peak RSS into a forked child's ru_maxrss, so commands are
# started by this small launcher process, begun before the harness grows.
LAUNCHER = """
import json, os, subprocess, sys, tempfile, time
for line in sys.stdin:
    command, env = json.loads(line)
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        errors.seek(0)
        message = errors.read().decode(errors="replace")[-300:] if status else ""
    print(json.dumps([elapsed, usage.ru_maxrss / 1024, message]), flush=True)
"""


class Launcher:
    """Runs commands from a process whose own memory stays small."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", LAUNCHER], text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, command: list[str]) -> tuple[float, float, str]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps([command, ENV]) + "\n")
        self.process.stdin.flush()
        elapsed, rss, message = json.loads(self.process.stdout.readline())
        return elapsed, rss, message


_launcher: Launcher | None = None


def run_once(command: list[str]) -> tuple[float, float, str]:
    """Seconds, peak RSS in MB, and the error text of a failed run."""
    global _launcher
    if _launcher is None:
        _launcher = Launcher()
    return _launcher.run(command)


def measure(prepare: Callable[[], str], command_for: Callable[[str], list[str]], runs: int,
            budget: float) -> Sample:
    sample = Sample(wanted=runs)
    for _ in range(runs):
        url = prepare()
        seconds, rss, failure = run_once(command_for(url))
        if failure:
            sample.failed = failure.strip().splitlines()[-1] if failure.strip() else "failed"
            break
        sample.seconds.append(seconds)
        sample.rss_mb = max(sample.rss_mb, rss)
        if seconds > budget:
            break
    return sample


# --- the report ----------------------------------------------------------------------------

Results = dict[tuple[str, str, str], Sample]  # (engine, case, tool) -> sample


def print_block(engine: str, case: str, results: Results) -> None:
    rows = {tool: sample for (e, c, tool), sample in results.items() if e == engine and c == case}
    raw, floor = rows.get("raw"), rows.get("floor")
    print(f"\n{engine} {case}")
    print(f"  {'tool':<8}{'median s':>10}{'runs':>6}{'RSS MB':>9}{'x raw':>8}{'x floor':>9}")
    for tool, sample in rows.items():
        if sample.failed:
            print(f"  {tool:<8}  failed: {sample.failed[:90]}")
            continue
        print(f"  {tool:<8}{sample.median:>10.3f}{len(sample.seconds):>6}{sample.rss_mb:>9.1f}"
              f"{ratio(sample, raw):>8}{ratio(sample, floor):>9}")


def ratio(sample: Sample | None, base: Sample | None) -> str:
    """``sample``'s median over ``base``'s, when both were measured."""
    if sample is None or base is None or not sample.seconds or not base.seconds:
        return "-"
    return f"{sample.median / base.median:.2f}"


def summary(results: Results) -> str:
    """One markdown table of all cases: medians in seconds and ours' ratios."""
    columns = ["ours", "raw", "floor", *PEERS]
    lines = [f"| engine | case | {' | '.join(columns)} | ours/floor | ours/raw |",
             "|---|---|" + "---:|" * (len(columns) + 2)]
    for engine, case in dict.fromkeys((e, c) for e, c, _ in results):
        row = {tool: sample for (e, c, tool), sample in results.items() if (e, c) == (engine, case)}
        if case == "startup":
            row = {"ours": row["--help"], "raw": row["python -c pass"]}
            case = "startup (ours: --help, raw: python -c pass)"
        cells = [cell(row.get(tool)) for tool in columns]
        ratios = [ratio(row.get("ours"), row.get(base)) for base in ("floor", "raw")]
        lines.append(f"| {engine} | {case} | {' | '.join(cells + ratios)} |")
    lines.append("\nMedians in seconds (W4 apply: half the runs); * fewer runs than asked "
                 "(one exceeded the case budget); failed: see the log; empty: not run.")
    return "\n".join(lines)


def cell(sample: Sample | None) -> str:
    if sample is None:
        return ""
    if sample.failed or not sample.seconds:
        return "failed"
    return f"{sample.median:.3f}" + ("*" if len(sample.seconds) < sample.wanted else "")


def write_out(path: str, table: str, results: Results, meta: dict[str, object]) -> None:
    """The summary table, then the run's settings and every sample as JSON."""
    records = [{"engine": e, "case": c, "tool": t, "seconds": s.seconds,
                "median": s.median if s.seconds else None, "rss_mb": s.rss_mb,
                "failed": s.failed} for (e, c, t), s in results.items()]
    data = json.dumps({"meta": meta, "results": records}, indent=1)
    header = f"# sibila_sqlmig benchmark, {meta['started']}, commit {meta['commit']}"
    Path(path).write_text(f"{header}\n\n{table}\n\n```json\n{data}\n```\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--engines", default="sqlite,postgresql,mysql")
    parser.add_argument("--workloads", default="W1,W2,W3,W4,startup")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help="comma-separated peers to run (dbmate, yoyo), or none")
    parser.add_argument("--no-peers", action="store_true", help="same as --peers none")
    parser.add_argument("--case-budget", type=float, default=30.0,
                        help="do not repeat a case whose run took longer (seconds)")
    parser.add_argument("--postgres", default=None, metavar="URL",
                        help="an existing server, e.g. postgresql://postgres@127.0.0.1:5432/ "
                             "(default: a throwaway cluster in benchmarks/.work/pgcluster)")
    parser.add_argument("--mysql", default="mysql://root@127.0.0.1:3306/")
    parser.add_argument("--out", metavar="PATH", help="write the summary and JSON results here")
    args = parser.parse_args()
    peers = [] if args.no_peers or args.peers == "none" else args.peers.split(",")
    if set(peers) - set(PEERS):
        parser.error(f"--peers: choose from {', '.join(PEERS)}, or none")
    run_once([sys.executable, "-c", "pass"])  # start the launcher while this process is small
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` runs
    cluster = None
    if "postgresql" in args.engines.split(",") and args.postgres is None:
        cluster = pgcluster.Cluster(WORK / "pgcluster")
    try:
        if cluster:
            try:
                args.postgres = cluster.start()
            except Exception as error:  # reported like an unreachable server
                print(f"# postgresql: the throwaway cluster failed; skipped: {error}")
                args.engines = ",".join(e for e in args.engines.split(",") if e != "postgresql")
        run(args, peers, "throwaway cluster" if cluster else "--postgres")
    finally:
        if cluster:
            cluster.stop()


def run(args: argparse.Namespace, wanted_peers: list[str], postgres_source: str) -> None:
    started = time.time()
    WORK.mkdir(exist_ok=True)
    install_ours()
    wanted = args.workloads.split(",")
    peers = install_peers(wanted_peers)
    engines = [Engine(name, {"postgresql": args.postgres, "mysql": args.mysql}.get(name, ""))
               for name in args.engines.split(",")]
    engines = [engine for engine in engines if engine.reachable()]
    servers = {engine.name: engine.describe() for engine in engines}
    if "postgresql" in servers:
        servers["postgresql"] += f" ({postgres_source})"
    for name, text in servers.items():
        print(f"# {name}: {text}")
    results: Results = {}
    tools = ["raw", "floor", "ours", *peers]

    if "startup" in wanted:
        results[("python", "startup", "python -c pass")] = measure(
            lambda: "", lambda _: [PYTHON, "-c", "pass"], args.runs, args.case_budget)
        results[("python", "startup", "--help")] = measure(
            lambda: "", lambda _: [PYTHON, "-m", "sibila_sqlmig", "--help"], args.runs,
            args.case_budget)
        print_block("python", "startup", results)

    for engine in engines:
        for name, make in (("W1", make_w1), ("W2", make_w2)):
            if name not in wanted and not (name == "W1" and "W3" in wanted):
                continue
            root = lay_out(make())
            if name in wanted:
                for tool in tools:
                    results[(engine.name, name, tool)] = measure(
                        engine.fresh, lambda url, t=tool, r=root: commands(t, url, r, peers,
                                                                            "apply"),
                        args.runs, args.case_budget)
                print_block(engine.name, name, results)
        if "W3" in wanted:
            no_op_case(engine, "W3", lay_out(make_w1()), tools, peers, args, results)
        if "W4" in wanted:
            root = lay_out(make_tiny(10_000))
            for tool in tools[1:]:
                results[(engine.name, "W4 apply", tool)] = measure(
                    engine.fresh,
                    lambda url, t=tool, r=root: commands(t, url, r, peers, "apply"),
                    max(1, args.runs // 2), args.case_budget)
            print_block(engine.name, "W4 apply", results)
            no_op_case(engine, "W4", root, tools, peers, args, results)
            no_op_case(engine, "W4 at 1,000", lay_out(make_tiny(1_000)), ["floor", "ours"],
                       peers, args, results)

    table = summary(results)
    minutes = (time.time() - started) / 60
    print(f"\n## Summary ({args.runs} runs a case, {minutes:.1f} minutes)\n\n{table}")
    if args.out:
        commit = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or "unknown"
        meta = {"started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
                "minutes": round(minutes, 1), "commit": commit, "servers": servers,
                "python": sys.version.split()[0], "cpus": os.cpu_count(),
                "peers": sorted(peers), "args": vars(args)}
        write_out(args.out, table, results, meta)
        print(f"# written to {args.out}")


def no_op_case(engine: Engine, label: str, root: Path, tools: list[str],
               peers: dict[str, str], args: argparse.Namespace, results: Results) -> None:
    """Apply once with each tool (untimed), then time its no-op migrate and its status."""
    for tool in tools:
        if tool == "raw":
            continue
        url = engine.fresh()
        _, _, failure = run_once(commands(tool, url, root, peers, "apply"))
        for action in ("apply", "status"):
            if tool == "floor" and action == "status":
                continue
            key = (engine.name, f"{label} no-op {'migrate' if action == 'apply' else 'status'}",
                   tool)
            if failure:
                results[key] = Sample(failed=f"setup: {failure.strip()[-80:]}")
                continue
            results[key] = measure(lambda url=url: url,
                                   lambda u, t=tool, a=action: commands(t, u, root, peers, a),
                                   args.runs, args.case_budget)
    for action in ("migrate", "status"):
        print_block(engine.name, f"{label} no-op {action}", results)


if __name__ == "__main__":
    main()
