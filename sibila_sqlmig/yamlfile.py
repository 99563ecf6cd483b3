"""Reading the small YAML mappings of migration.yaml and sibila_sqlmig.yaml.

``read_mapping`` is the one way in. It always uses a safe loader, and it
refuses what a header or a config file never needs but an attacker or a
mistake can use to hang the tool: anchors and aliases (a "billion laughs"
document expands to billions of items when printed) and deep nesting.

Importing PyYAML costs about 30 ms, more than a whole no-op ``migrate``
should take, and nearly every header is a few lines of ``key: scalar``. So
a strict reader handles exactly that subset and hands anything else (lists,
block scalars, escapes, YAML 1.1's ``yes``/``on``/dates, ...) to PyYAML. It
cannot turn its own bug into a user-facing "invalid YAML": it either
returns the mapping or says "not simple", and only PyYAML's errors become
YamlProblem. A property test checks that it agrees with ``yaml.safe_load``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .sqlfile import normalise_text

MAX_DEPTH = 10  # a header is flat; a config file nests a level or two at most
MAX_EVENTS = 10_000  # far above any real header or config file, far below a bomb


class YamlProblem(Exception):
    """A YAML file that cannot be used: where (path, line) and what."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.line = line


def read_mapping(location: str | Path) -> dict[str, Any] | None:
    """The mapping in a YAML file; None when it is empty or holds only comments.

    Raises YamlProblem when it cannot be read, is not UTF-8 or YAML, uses anchors
    or aliases, nests too deeply, or is not a mapping with string keys;
    FileNotFoundError when it does not exist (the caller knows what that means).
    """
    try:
        with open(location, "rb") as stream:  # bytes, then decode: faster than text mode
            data = stream.read()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise YamlProblem(Path(location), f"cannot be read: {error.strerror}") from None
    try:
        # CRLF made LF as for SQL files, so a Windows checkout takes the fast path too.
        text = normalise_text(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise YamlProblem(Path(location), f"is not UTF-8 text (byte {error.start}); save it "
                          "as UTF-8", data.count(b"\n", 0, error.start) + 1) from None
    data = _load_simple(text)
    if data is _NOT_SIMPLE:
        data = _load_with_pyyaml(Path(location), text)
    if data is None:
        return None
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise YamlProblem(Path(location), "must be a mapping of names to values ('name: value' "
                          "lines)")
    return data


# --- the fast path: `key: scalar` lines only ---------------------------------------------

_NOT_SIMPLE: Any = object()  # "hand this text to PyYAML"
_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_SIMPLE_LINE = re.compile(rf"({_KEY})[ \t]*:[ \t]+(.*?)[ \t]*")
# A plain scalar that YAML 1.1 resolves to a string, whatever its words.
_PLAIN_STRING = re.compile(r"[A-Za-z][A-Za-z0-9 _.,()/'@:+=-]*")
_NOT_STRINGS = frozenset(["yes", "no", "on", "off", "y", "n", "true", "false", "null"])
_DOUBLE_QUOTED = re.compile(r'"([^"\\]*)"')
_SINGLE_QUOTED = re.compile(r"'([^']*)'")
_INTEGER = re.compile(r"[1-9][0-9]{0,17}|0")
_FLOAT = re.compile(r"[0-9]+\.[0-9]+")


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
    return _NOT_SIMPLE


def _load_simple(text: str) -> Any:
    """The mapping of a text made only of ``key: scalar`` lines and comments, None
    for an empty document, or _NOT_SIMPLE for anything else."""
    if "\t" in text or "\r" in text:
        return _NOT_SIMPLE
    result: dict[str, Any] = {}
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            if stripped and line[0] in " \t":
                return _NOT_SIMPLE  # an indented comment may sit inside a block
            continue
        match = _SIMPLE_LINE.fullmatch(line)
        key = match.group(1) if match else ""
        if not match or key in result or key.lower() in _NOT_STRINGS:
            return _NOT_SIMPLE  # YAML 1.1 reads a key such as `on` as a boolean
        value = _scalar(match.group(2))
        if value is _NOT_SIMPLE:
            return _NOT_SIMPLE
        result[key] = value
    return result or None  # blank or only comments: YAML's empty document


# --- everything else: PyYAML, after a look at its events -----------------------------------

def _load_with_pyyaml(path: Path, text: str) -> Any:
    import yaml  # deferred: see the module docstring

    try:
        _refuse_dangerous_shapes(path, yaml.parse(text, Loader=yaml.SafeLoader))
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise YamlProblem(path, f"invalid YAML: {_pyyaml_message(error)}",
                          _pyyaml_line(error)) from None


def _refuse_dangerous_shapes(path: Path, events: Any) -> None:
    """Refuse anchors, aliases and deep nesting before anything is built from them."""
    import yaml

    depth = 0
    for count, event in enumerate(events):
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise YamlProblem(path, "uses a YAML anchor or alias (& or *); write the "
                              "values out instead", line)
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlProblem(path, f"nests more than {MAX_DEPTH} levels deep; a "
                                  "header or config file is a flat mapping", line)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        if count > MAX_EVENTS:
            raise YamlProblem(path, f"holds more than {MAX_EVENTS} YAML items; a header "
                              "or config file is a few lines", line)


def _pyyaml_line(error: Exception) -> int | None:
    """The 1-based line of a PyYAML error, where it knows one."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    return None if mark is None else int(mark.line) + 1


def _pyyaml_message(error: Exception) -> str:
    """PyYAML's message without its multi-line position dump."""
    problem = getattr(error, "problem", None)
    context = getattr(error, "context", None)
    parts = [str(part) for part in (context, problem) if part]
    return ", ".join(parts) if parts else str(error).splitlines()[0]
