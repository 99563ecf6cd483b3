"""What benchmarks/run.py prints and writes: a block per case, the summary table, the JSON.

A ``Sample`` is one tool's runs in one case; ``Results`` maps (engine, case, tool)
to it, in the order the cases ran.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Sample:
    seconds: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    failed: str = ""
    wanted: int = 0  # runs asked for; fewer were made when one exceeded the case budget

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def spread(self) -> float:
        """Half the max-min range over the median: 0.04 reads as ±4%."""
        if not self.seconds:
            return float("nan")
        return (max(self.seconds) - min(self.seconds)) / 2 / self.median


Results = dict[tuple[str, str, str], Sample]  # (engine, case, tool) -> sample


def print_block(engine: str, case: str, results: Results) -> None:
    """The case's tools: median, spread, runs, peak RSS, and ratios to the baselines run."""
    rows = {tool: sample for (e, c, tool), sample in results.items() if e == engine and c == case}
    bases = {f"x {tool}": rows[tool] for tool in ("raw", "floor", "before") if tool in rows}
    width = max(8, *(len(tool) + 2 for tool in rows))
    print(f"\n{engine} {case}")
    print(f"  {'tool':<{width}}{'median s':>9}{'±':>7}{'runs':>6}{'RSS MB':>8}"
          + "".join(f"{name:>10}" for name in bases))
    for tool, sample in rows.items():
        if sample.failed:
            print(f"  {tool:<{width}}failed: {sample.failed[:90]}")
            continue
        spread = f"±{sample.spread:.0%}" if len(sample.seconds) > 1 else "-"
        print(f"  {tool:<{width}}{sample.median:>9.3f}{spread:>7}{len(sample.seconds):>6}"
              f"{sample.rss_mb:>8.1f}"
              + "".join(f"{ratio(sample, base):>10}" for base in bases.values()))


def ratio(sample: Sample | None, base: Sample | None) -> str:
    """``sample``'s median over ``base``'s, when both were measured."""
    if sample is None or base is None or not sample.seconds or not base.seconds:
        return "-"
    return f"{sample.median / base.median:.2f}"


def summary(results: Results, peers: Sequence[str], baseline: str | None) -> str:
    """One markdown table of all cases: medians in seconds and ours' ratios.

    With a ``baseline`` (how to name it, e.g. "cc9f4b3"), the table also has the
    ``before`` column and the ours/before ratio.
    """
    before = ["before"] if baseline else []
    columns = ["ours", *before, "raw", "floor", *peers]
    bases = ["floor", "raw", *before]
    lines = [f"| engine | case | {' | '.join(columns)} | "
             + " | ".join(f"ours/{base}" for base in bases) + " |",
             "|---|---|" + "---:|" * (len(columns) + len(bases))]
    for engine, case in dict.fromkeys((e, c) for e, c, _ in results):
        row: dict[str, Sample | None] = {
            tool: sample for (e, c, tool), sample in results.items() if (e, c) == (engine, case)}
        if case == "startup":
            row = {"ours": row["--help"], "raw": row["python -c pass"],
                   "before": row.get("before --help")}
            case = "startup (ours: --help, raw: python -c pass)"
        cells = [cell(row.get(tool)) for tool in columns]
        ratios = [ratio(row.get("ours"), row.get(base)) for base in bases]
        lines.append(f"| {engine} | {case} | {' | '.join(cells + ratios)} |")
    lines.append("\nMedians in seconds (W4 apply: half the runs); * fewer runs than asked "
                 "(one exceeded the case budget); failed: see the log; empty: not run.")
    if baseline:
        lines.append(f"before: the package at {baseline}, run like ours; each case ran its "
                     "tools round-robin (the log shows each median's ± spread).")
    return "\n".join(lines)


def cell(sample: Sample | None) -> str:
    if sample is None:
        return ""
    if sample.failed or not sample.seconds:
        return "failed"
    return f"{sample.median:.3f}" + ("*" if len(sample.seconds) < sample.wanted else "")


def write_out(path: str, table: str, results: Results, meta: dict[str, object]) -> None:
    """The summary table, then the run's settings and every sample as JSON.

    Each sample's record has its seconds, their median, min and max, and
    ``spread_pct``: half the max-min range over the median, in percent.
    """
    records = []
    for (engine, case, tool), sample in results.items():
        measured = bool(sample.seconds)
        records.append({
            "engine": engine, "case": case, "tool": tool, "seconds": sample.seconds,
            "median": sample.median if measured else None,
            "min": min(sample.seconds) if measured else None,
            "max": max(sample.seconds) if measured else None,
            "spread_pct": round(100 * sample.spread, 1) if measured else None,
            "runs_wanted": sample.wanted, "rss_mb": sample.rss_mb, "failed": sample.failed})
    data = json.dumps({"meta": meta, "results": records}, indent=1)
    header = f"# sibila_sqlmig benchmark, {meta['started']}, commit {meta['commit']}"
    baseline: Any = meta.get("baseline")
    if baseline:
        header += f", before: {baseline['ref']} = {baseline['commit'][:9]}"
    Path(path).write_text(f"{header}\n\n{table}\n\n```json\n{data}\n```\n")
