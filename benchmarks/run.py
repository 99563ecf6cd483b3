"""Benchmark harness: sibila_sqlmig against the raw limit, a floor, and peers, in one run.

    python benchmarks/run.py                       # everything reachable, 5 runs a case
    python benchmarks/run.py --engines sqlite --runs 3 --workloads W1,W3,startup
    python benchmarks/run.py --peers dbmate --out /tmp/bench.md   # skip yoyo; save table
    python benchmarks/run.py --baseline main --out /tmp/ab.md     # this tree against main

Workloads (generated into benchmarks/.work/):
  W1  500 migrations, each CREATE TABLE + CREATE INDEX (down drops them)
  W2  20 migrations, each a table of 20,000 rows in INSERTs of 500 rows (~47 MB),
      5% of the strings holding ; -- /* */ and doubled quotes
  W3  no-op migrate and status with W1 applied
  W4  10,000 tiny migrations: apply all, then no-op migrate and status
      (and the no-op at 1,000, to show how it grows)
  startup  --help against python -c pass
Tools: ours (this checkout, installed non-editable into benchmarks/.work/venv);
raw (the same SQL in one transaction: sqlite3 executescript, psql -f, mariadb <);
floor (benchmarks/floor.py); peers (--peers, default dbmate,yoyo; "none" for
none): dbmate (npm package, installed into benchmarks/.work/npm) and
yoyo-migrations (pip, benchmarks/.work/yoyo venv); and with --baseline REF,
before: the package at that git commit or ref, installed into
benchmarks/.work/venv-baseline (again only when REF names another commit) and
run exactly like ours, wherever ours runs.
PostgreSQL: by default a throwaway cluster (benchmarks/pgcluster.py; initdb into
benchmarks/.work/pgcluster, default settings with fsync on, 127.0.0.1 at a free
port, deleted at the end); --postgres URL uses an existing server instead.
MariaDB: the server at --mysql.
Measuring: the tools of a case take turns (run 1 of each, then run 2 of each,
..., each round starting one tool later), so a burst of outside load is shared
out rather than landing on one tool. Each run is on a fresh database; a no-op
case runs on the database the tool set up for itself. A tool whose single run
exceeds --case-budget seconds is not repeated (the runs column says so).
Medians of --runs runs, with their spread (±: half the max-min range over the
median) in the per-case blocks. Peak RSS is per process. The end prints a
markdown summary of all cases; --out PATH also writes it, with the full results
as JSON, to PATH. Tables and JSON are made by benchmarks/report.py.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pgcluster
from report import Results, Sample, print_block, summary, write_out
from workloads import lay_out, make_tiny, make_w1, make_w2

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
VENV = WORK / "venv"
PYTHON = str(VENV / "bin" / "python")  # ours as a user installs it (not editable)
BASELINE_VENV = WORK / "venv-baseline"  # --baseline: the package at that commit
BASELINE_PYTHON = str(BASELINE_VENV / "bin" / "python")
DRIVERS = ("psycopg[binary]", "psycopg2-binary", "PyMySQL")  # psycopg2: for the floor only
BENCH_DB = "sqlmig_bench"
PEERS = ("dbmate", "yoyo")
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# --- engines -------------------------------------------------------------------------------

@dataclass
class Engine:
    name: str
    server_url: str = ""

    def fresh(self, name: str = BENCH_DB) -> str:
        """An empty database ``name`` (dropped first if it exists); returns our URL for it."""
        if self.name == "sqlite":
            self.drop(name)
            return str(WORK / f"{name}.db")
        self.admin(self.drop_sql(name), f"CREATE DATABASE {name}")
        return self.server_url + name

    def drop(self, name: str) -> None:
        if self.name == "sqlite":
            for suffix in (".db", ".db-journal"):
                (WORK / f"{name}{suffix}").unlink(missing_ok=True)
        else:
            self.admin(self.drop_sql(name))

    def drop_sql(self, name: str) -> str:
        force = " WITH (FORCE)" if self.name == "postgresql" else ""
        return f"DROP DATABASE IF EXISTS {name}{force}"

    def admin(self, *statements: str) -> None:
        """Run ``statements`` on the server, outside any database of ours."""
        if self.name == "postgresql":
            import psycopg

            with psycopg.connect(self.server_url + "postgres", autocommit=True) as connection:
                for statement in statements:
                    connection.execute(statement)
            return
        connection = self.mysql_admin()
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        connection.close()

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

def install(python: str, venv: Path, source: Path) -> None:
    """A regular (non-editable) install of the package in ``source`` into ``venv``.

    Its dependencies (as ``source`` declares them) and the drivers are installed
    when missing; the package itself is rebuilt and reinstalled every time.
    """
    if not Path(python).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    project = tomllib.loads((source / "pyproject.toml").read_text()).get("project", {})
    subprocess.run([python, "-m", "pip", "install", "--quiet", *DRIVERS,
                    *project.get("dependencies", [])], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--force-reinstall", str(source)], check=True)


def resolve(ref: str) -> str:
    """The full commit id that ``ref`` names in this repository, or "" if none."""
    found = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet",
                            f"{ref}^{{commit}}"], capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else ""


def install_baseline(commit: str) -> None:
    """The package at ``commit`` into BASELINE_VENV, unless it holds that commit already."""
    marker = BASELINE_VENV / "baseline-commit"
    if Path(BASELINE_PYTHON).exists() and marker.exists() and marker.read_text().strip() == commit:
        return
    print(f"# before: installing the package at {commit[:12]} into {BASELINE_VENV}")
    marker.unlink(missing_ok=True)  # a failed install must not look like a finished one
    with tempfile.TemporaryDirectory(prefix="sqlmig-baseline-") as tree:
        git = subprocess.Popen(["git", "-C", str(REPO), "archive", commit],
                               stdout=subprocess.PIPE)
        assert git.stdout
        tar = subprocess.Popen(["tar", "-x", "-C", tree], stdin=git.stdout)
        git.stdout.close()  # tar holds the pipe now
        if tar.wait() or git.wait():
            raise RuntimeError(f"could not export commit {commit} (git archive | tar -x)")
        install(BASELINE_PYTHON, BASELINE_VENV, Path(tree))
    marker.write_text(commit + "\n")


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
    if tool in ("ours", "before"):
        command = "migrate" if action == "apply" else "status"
        python = PYTHON if tool == "ours" else BASELINE_PYTHON
        return [python, "-m", "sibila_sqlmig", command, "--database", url, "--migrations",
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


# --- measuring -----------------------------------------------------------------------------

# Linux carries a parent's peak RSS into a forked child's ru_maxrss, so commands are
# started by this small launcher process, begun before the harness grows. It (and so
# every command) runs in WORK: `python -m` puts the current folder first on sys.path,
# and in the checkout that would import its sibila_sqlmig/ instead of the venv's.
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
        WORK.mkdir(exist_ok=True)
        self.process = subprocess.Popen([sys.executable, "-c", LAUNCHER], text=True, cwd=WORK,
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


Job = Callable[[], list[str]]  # prepares a tool's database; returns the command to time


def measure(jobs: dict[str, Job], runs: int, budget: float) -> dict[str, Sample]:
    """Up to ``runs`` runs of each job, round-robin: run 1 of every tool, then run 2, ...

    Each round starts one tool later, so no tool always follows the same one. A
    burst of outside load thus hits every tool's runs alike instead of one tool's
    median. A tool that fails, or whose run exceeds ``budget`` seconds, stops.
    """
    samples = {tool: Sample(wanted=runs) for tool in jobs}
    order = list(jobs)
    stopped: set[str] = set()
    for number in range(runs if order else 0):
        first = number % len(order)
        for tool in order[first:] + order[:first]:
            if tool in stopped:
                continue
            sample = samples[tool]
            seconds, rss, failure = run_once(jobs[tool]())
            if failure:
                sample.failed = failure.strip().splitlines()[-1] if failure.strip() else "failed"
                stopped.add(tool)
                continue
            sample.seconds.append(seconds)
            sample.rss_mb = max(sample.rss_mb, rss)
            if seconds > budget:
                stopped.add(tool)
    return samples


@dataclass
class Bench:
    """What every case needs: the peers' executables, --runs, --case-budget; the results."""

    peers: dict[str, str]
    runs: int
    budget: float
    results: Results = field(default_factory=dict)

    def record(self, engine: str, case: str, samples: dict[str, Sample]) -> None:
        self.results.update({(engine, case, tool): sample for tool, sample in samples.items()})
        print_block(engine, case, self.results)

    def apply_case(self, engine: Engine, case: str, root: Path, tools: list[str],
                   runs: int | None = None) -> None:
        """Each tool applies ``root``, each run to a fresh database."""
        jobs = {tool: lambda t=tool: commands(t, engine.fresh(), root, self.peers, "apply")
                for tool in tools}
        self.record(engine.name, case, measure(jobs, runs or self.runs, self.budget))

    def no_op_cases(self, engine: Engine, label: str, root: Path, tools: list[str]) -> None:
        """Each tool applies ``root`` (untimed) to a database of its own, where its no-op
        migrate, then its status, are timed; the databases are dropped at the end."""
        urls: dict[str, str] = {}
        failed: dict[str, Sample] = {}
        for tool in tools:
            if tool != "raw":
                urls[tool] = engine.fresh(f"{BENCH_DB}_{tool}")
                _, _, failure = run_once(commands(tool, urls[tool], root, self.peers, "apply"))
                if failure:
                    failed[tool] = Sample(failed=f"setup: {failure.strip()[-80:]}")
        for action, verb in (("apply", "migrate"), ("status", "status")):
            names = [tool for tool in urls if not (tool == "floor" and action == "status")]
            jobs = {tool: lambda t=tool, a=action: commands(t, urls[t], root, self.peers, a)
                    for tool in names if tool not in failed}
            measured = measure(jobs, self.runs, self.budget)
            self.record(engine.name, f"{label} no-op {verb}",
                        {tool: failed.get(tool) or measured[tool] for tool in names})
        for tool in urls:
            engine.drop(f"{BENCH_DB}_{tool}")


# --- main ----------------------------------------------------------------------------------

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
    parser.add_argument("--baseline", metavar="REF",
                        help="also measure the package at this git commit or ref (as 'before') "
                             "wherever ours runs")
    args = parser.parse_args()
    peers = [] if args.no_peers or args.peers == "none" else args.peers.split(",")
    if set(peers) - set(PEERS):
        parser.error(f"--peers: choose from {', '.join(PEERS)}, or none")
    baseline = resolve(args.baseline) if args.baseline else ""
    if args.baseline and not baseline:
        parser.error(f"--baseline: {args.baseline!r} names no commit in {REPO}")
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
        run(args, peers, "throwaway cluster" if cluster else "--postgres", baseline)
    finally:
        if cluster:
            cluster.stop()


def run(args: argparse.Namespace, wanted_peers: list[str], postgres_source: str,
        baseline: str) -> None:
    """Install, then measure every wanted case on every reachable engine, then report."""
    started = time.time()
    install(PYTHON, VENV, REPO)
    if baseline:
        install_baseline(baseline)
    wanted = args.workloads.split(",")
    bench = Bench(install_peers(wanted_peers), args.runs, args.case_budget)
    engines = [Engine(name, {"postgresql": args.postgres, "mysql": args.mysql}.get(name, ""))
               for name in args.engines.split(",")]
    engines = [engine for engine in engines if engine.reachable()]
    servers = {engine.name: engine.describe() for engine in engines}
    if "postgresql" in servers:
        servers["postgresql"] += f" ({postgres_source})"
    for name, text in servers.items():
        print(f"# {name}: {text}")
    ours = ["ours", "before"] if baseline else ["ours"]
    tools = ["raw", "floor", *ours, *bench.peers]

    if "startup" in wanted:
        jobs: dict[str, Job] = {"python -c pass": lambda: [PYTHON, "-c", "pass"],
                                "--help": lambda: [PYTHON, "-m", "sibila_sqlmig", "--help"]}
        if baseline:
            jobs["before --help"] = lambda: [BASELINE_PYTHON, "-m", "sibila_sqlmig", "--help"]
        bench.record("python", "startup", measure(jobs, bench.runs, bench.budget))

    for engine in engines:
        for name, make in (("W1", make_w1), ("W2", make_w2)):
            if name in wanted or (name == "W1" and "W3" in wanted):
                root = lay_out(make(), WORK)  # W3 needs W1's files
                if name in wanted:
                    bench.apply_case(engine, name, root, tools)
        if "W3" in wanted:
            bench.no_op_cases(engine, "W3", lay_out(make_w1(), WORK), tools)
        if "W4" in wanted:
            root = lay_out(make_tiny(10_000), WORK)
            bench.apply_case(engine, "W4 apply", root, [t for t in tools if t != "raw"],
                             runs=max(1, args.runs // 2))
            bench.no_op_cases(engine, "W4", root, tools)
            bench.no_op_cases(engine, "W4 at 1,000", lay_out(make_tiny(1_000), WORK),
                              ["floor", *ours])

    label = ""
    if baseline:
        label = baseline[:9] if baseline.startswith(args.baseline) else \
            f"{args.baseline} ({baseline[:9]})"
    table = summary(bench.results, PEERS, label)
    minutes = (time.time() - started) / 60
    print(f"\n## Summary ({args.runs} runs a case, {minutes:.1f} minutes)\n\n{table}")
    if args.out:
        meta = {"started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
                "minutes": round(minutes, 1), "commit": describe_checkout(),
                "baseline": {"ref": args.baseline, "commit": baseline} if baseline else None,
                "servers": servers,
                "python": sys.version.split()[0], "cpus": os.cpu_count(),
                "peers": sorted(bench.peers), "args": vars(args)}
        write_out(args.out, table, bench.results, meta)
        print(f"# written to {args.out}")


def describe_checkout() -> str:
    """HEAD's short commit id, and whether the package's files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                              text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", "sibila_sqlmig", "pyproject.toml")
    return commit + (" + uncommitted changes" if changed else "")


if __name__ == "__main__":
    main()
