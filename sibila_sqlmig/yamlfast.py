"""Reading the small YAML mappings of migration.yaml and sibila_sqlmig.yaml.

Always with a safe loader. Importing PyYAML costs about 30 ms, more than a
whole no-op ``migrate`` should take, and nearly every header is a few lines
of ``key: scalar``. So a strict reader handles exactly that subset and
hands anything else (lists, anchors, block scalars, escapes, YAML 1.1's
``yes``/``on``/dates, ...) to ``yaml.safe_load``. A property test checks
that the subset reader agrees with ``yaml.safe_load`` on what it accepts.
"""

from __future__ import annotations

import re
from typing import Any

_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_SIMPLE_LINE = re.compile(rf"({_KEY})[ \t]*:[ \t]+(.*?)[ \t]*")
# A plain scalar that YAML 1.1 resolves to a string, whatever its words.
_PLAIN_STRING = re.compile(r"[A-Za-z][A-Za-z0-9 _.,()/'@:+=-]*")
_NOT_STRINGS = frozenset(["yes", "no", "on", "off", "y", "n", "true", "false", "null"])
_DOUBLE_QUOTED = re.compile(r'"([^"\\]*)"')
_SINGLE_QUOTED = re.compile(r"'([^']*)'")
_INTEGER = re.compile(r"[1-9][0-9]{0,17}|0")
_FLOAT = re.compile(r"[0-9]+\.[0-9]+")


class _NotSimple(Exception):
    """The text needs the real YAML parser."""


def _scalar(text: str) -> Any:
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    match = _DOUBLE_QUOTED.fullmatch(text) or _SINGLE_QUOTED.fullmatch(text)
    if match:
        return match.group(1)
    if _INTEGER.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if (
        _PLAIN_STRING.fullmatch(text)
        and text.lower() not in _NOT_STRINGS
        and "  " not in text
        and ": " not in text
        and not text.endswith(":")
    ):
        return text
    raise _NotSimple


def _load_simple(text: str) -> dict[str, Any] | None:
    result: dict[str, Any] = {}
    for line in text.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            if line.strip() and line[0] in " \t":
                raise _NotSimple  # an indented comment may sit inside a block
            continue
        match = _SIMPLE_LINE.fullmatch(line)
        if not match or match.group(1) in result or match.group(1).lower() in _NOT_STRINGS:
            raise _NotSimple  # YAML 1.1 reads a key such as `on` as a boolean
        result[match.group(1)] = _scalar(match.group(2))
    return result or None  # blank or only comments: YAML's empty document


def load_yaml(text: str) -> Any:
    """Parse YAML text safely; a plain ``key: scalar`` mapping never imports PyYAML.

    Raises ``yaml.YAMLError`` (with its ``problem_mark`` line) on invalid YAML.
    """
    if "\t" not in text and "\r" not in text:
        try:
            return _load_simple(text)
        except _NotSimple:
            pass
    import yaml  # deferred: see the module docstring

    return yaml.safe_load(text)


def yaml_error_line(error: Exception) -> int | None:
    """The 1-based line of a PyYAML error, where it knows one."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    return None if mark is None else int(mark.line) + 1


def yaml_error_text(error: Exception) -> str:
    """PyYAML's message without its multi-line position dump."""
    problem = getattr(error, "problem", None)
    context = getattr(error, "context", None)
    parts = [str(part) for part in (context, problem) if part]
    return ", ".join(parts) if parts else str(error).splitlines()[0]
