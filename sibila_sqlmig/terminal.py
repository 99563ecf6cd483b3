"""What the command line shows: lines, colour, JSON, and a long file's progress.

Colour and redrawn lines only on a terminal, never with NO_COLOR or --quiet;
a reader that goes away (``| head``) silences the output without ending the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see cli.py)
if TYPE_CHECKING:
    from typing import Any, TextIO

    from .prepare import PreparedFile
    from .runner import StepResult


class Output:
    """Human output: colour only on a terminal and never with NO_COLOR.

    A reader that goes away (``sibila-sqlmig migrate | head -2``) silences the
    output but never stops the command: a migration half-way must not be cut
    short because nobody reads its progress.
    """

    def __init__(self, stream: TextIO, quiet: bool, verbose: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.verbose = verbose
        terminal = stream.isatty()
        self.colour = terminal and "NO_COLOR" not in os.environ
        # Lines redrawn in place: on a real terminal, and not when -v interleaves log lines.
        self.can_redraw = terminal and not quiet and not verbose and \
            os.environ.get("TERM") != "dumb"
        self.reader_gone = False
        self.drawn = False  # a redrawn line is on screen

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def line(self, text: str = "", *, always: bool = False) -> None:
        if self.reader_gone or (self.quiet and not always):
            return
        self.clear_drawn()
        try:
            print(text, file=self.stream)
        except BrokenPipeError:
            self.reader_gone = True

    def write(self, text: str) -> None:
        """Write ``text`` as it is (a dump): the command's result, shown with --quiet."""
        if self.reader_gone:
            return
        self.clear_drawn()
        try:
            self.stream.write(text)
        except BrokenPipeError:
            self.reader_gone = True

    def draw(self, text: str) -> None:
        """Redraw the current terminal line with ``text``."""
        if self.reader_gone or not self.can_redraw:
            return
        try:
            self.stream.write(f"\r\033[K{text}")
            self.stream.flush()
            self.drawn = True
        except BrokenPipeError:
            self.reader_gone = True

    def clear_drawn(self) -> None:
        """Clear a redrawn line before anything else is written (here or on stderr)."""
        if self.drawn:
            self.drawn = False
            with contextlib.suppress(BrokenPipeError):
                self.stream.write("\r\033[K")
                self.stream.flush()

    def json(self, data: Any) -> None:
        import json

        self.line(json.dumps(data, indent=2, ensure_ascii=False), always=True)

    def close(self) -> None:
        """Flush; a closed pipe then points stdout at /dev/null, so that Python's own
        flush at exit finds nothing to complain about."""
        try:
            self.stream.flush()
        except BrokenPipeError:
            self.reader_gone = True
        if self.reader_gone:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, given the terminal's width.

    argparse makes a formatter for every add_argument, and one that is not given a
    width imports shutil (and with it zlib, bz2 and lzma) to ask the terminal: 4 ms
    of every command's start on the benchmark machine (benchmarks/run.py, startup).
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_width() - 2)  # argparse's own margin


def terminal_width() -> int:
    """The width shutil.get_terminal_size() would give: $COLUMNS, the terminal, or 80
    (a value of 0 or less counts as unknown, as there)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class LiveProgress:
    """Each file done, as a line; on a terminal, a long file's statement count and time
    redrawn in place (never with --quiet or -v, and never into a pipe or a file)."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.file: object = None
        self.started = self.last_draw = 0.0

    def statement(self, prepared: PreparedFile, done: int, total: int) -> None:
        now = time.monotonic()
        if prepared is not self.file:
            self.file, self.started, self.last_draw = prepared, now, now
        # Quick files never draw; a long one is redrawn at most five times a second.
        if now - self.started < 0.5 or now - self.last_draw < 0.2:
            return
        self.last_draw = now
        self.out.draw(f"  {prepared.version} {prepared.description}: statement {done} of "
                      f"{total} ({now - self.started:.1f} s)")

    def step(self, step: StepResult) -> None:
        out = self.out
        if step.skipped:
            out.line(f"skipped {step.version} {step.description}: another process did it")
            return
        detail = f", {step.statements} statements" if out.verbose else ""
        if step.from_journal:  # said even with --quiet: the files on disk did not run
            detail += "; its folder is gone: ran the down.sql the journal kept when it applied"
        out.line(f"{out.paint(step.outcome, '32')} {step.version} {step.description} "
                 f"({step.seconds:.3f} s{detail})", always=step.from_journal)
