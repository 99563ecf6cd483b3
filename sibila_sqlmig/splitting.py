"""Splitting a SQL file into statements, exactly, per dialect, with start lines.

Two layers, because one cannot be both exact and fast:

* A lexical scanner (compiled regular expressions, one pass) that knows each
  dialect's strings, quoted identifiers, comments and dollar quotes, and so
  finds every ``;`` (or ``DELIMITER``) that is really a statement boundary.
  Plain text and simple strings are consumed by one possessive regex in C, so
  a 5 MB INSERT whose strings hold thousands of ``;`` costs a few matches,
  never a Python step per string or character.
* For the few statements that can hold a compound body (SQLite triggers,
  MySQL routines, triggers and events, PostgreSQL ``BEGIN ATOMIC`` bodies and
  rules), the scanner masks strings and comments and hands the statement to
  ``blocks.BlockTracker``: sqlparse's lexer classifies its words, and the
  tracker follows ``BEGIN ... END``, ``CASE ... END``, ``IF ... END IF``,
  ``LOOP``, ``WHILE``, ``REPEAT ... END REPEAT`` to where the body closes.

Input may carry a UTF-8 BOM and CRLF or CR line endings; lines are counted
on the normalised text.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from .blocks import BlockTracker
from .sqlfile import normalise_text

DIALECTS = ("sqlite", "postgresql", "mysql")


class Statement(NamedTuple):
    """One statement: its text (without the delimiter), start line and offset."""

    sql: str
    line: int
    offset: int


class SplitError(ValueError):
    """The text cannot be split (an unterminated string, quoted name or dollar quote)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def split_sql(text: str, dialect: str) -> list[Statement]:
    """Split ``text`` into statements for ``dialect`` ("sqlite", "postgresql", "mysql").

    Pieces that hold only comments and whitespace are dropped. MySQL's
    ``DELIMITER`` client directive is honoured and never sent as a statement.
    """
    _check_dialect(dialect)
    return _Splitter(normalise_text(text), dialect).run()


def has_statement(text: str, dialect: str) -> bool:
    """True when ``text`` holds at least one statement for ``dialect``.

    The same scan as ``split_sql``, stopped where the first statement starts: so
    comments, MySQL's executable ``/*! ... */`` comments and ``DELIMITER`` lines
    are judged exactly as when the file runs, and cheaply.
    """
    _check_dialect(dialect)
    text = normalise_text(text)
    if _KEYWORD_FIRST.match(text):
        return True
    return _Splitter(text, dialect).next_start(0) is not None


# Nearly every file starts with a keyword, and then a statement starts there in every
# dialect (MySQL's DELIMITER directive aside). This look costs 0.3 us against 1.8 us
# for the scanner: 15 ms of a no-op run over 10,000 versions (benchmarks W4). A
# property test checks that has_statement agrees with split_sql.
_KEYWORD_FIRST = re.compile(r"\s*+(?!DELIMITER\b)[A-Za-z]", re.I)


def _check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {DIALECTS}")


_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_LEADING_COMMENTS = re.compile(r"--[^\n]*|/\*(?!!).*?\*/", re.S)


def leading_words(sql: str, count: int = 6) -> list[str]:
    """The first words of a statement as written, comments skipped."""
    head = sql[:400]
    if "--" in head or "/*" in head:
        head = _LEADING_COMMENTS.sub(" ", head)
    return _WORDS.findall(head)[:count]


def head_words(sql: str, count: int = 6) -> tuple[str, ...]:
    """The first words of a statement, upper case, comments skipped."""
    return tuple(word.upper() for word in leading_words(sql, count))


# --- the lexical layer -------------------------------------------------------------------

def _is_ident_char(char: str) -> bool:
    """A character that may continue an identifier (so it glues to a following quote)."""
    return char.isalnum() or char in "_$"


_SINGLE_STANDARD = re.compile(r"'[^']*(?:''[^']*)*'")
_SINGLE_BACKSLASH = re.compile(r"'[^'\\]*(?:(?:\\.|'')[^'\\]*)*'", re.S)
_DOUBLE_STANDARD = re.compile(r'"[^"]*(?:""[^"]*)*"')
_DOUBLE_BACKSLASH = re.compile(r'"[^"\\]*(?:(?:\\.|"")[^"\\]*)*"', re.S)
_BACKTICK = re.compile(r"`[^`]*(?:``[^`]*)*`")
_BRACKET = re.compile(r"\[[^\]]*\]")
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_NESTED_COMMENT_PART = re.compile(r"/\*|\*/")
_SPACE = re.compile(r"\s+")
_DELIMITER_DIRECTIVE = re.compile(r"DELIMITER[ \t]+(\S+)[^\n]*", re.I)

_SPECIALS = {
    "sqlite": "'\"`[-/",
    "postgresql": "'\"-/$",
    "mysql": "'\"`-/#",
}
_COMPOUND_HEAD = {
    "sqlite": re.compile(r"CREATE\s+(?:TEMP\s+|TEMPORARY\s+)?TRIGGER\b", re.I),
    "postgresql": re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE|RULE)\b",
                             re.I),
    # Routines, triggers and events (the definer may be quoted, with spaces), and
    # MariaDB's compound statements outside a routine (IF ... END IF, labelled loops).
    "mysql": re.compile(
        r"(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*(?:'[^']*'|`[^`]*`|[^\s'`@]+)"
        r"(?:@(?:'[^']*'|`[^`]*`|\S+))?\s+)?(?:AGGREGATE\s+)?"
        r"(?:PROCEDURE|FUNCTION|TRIGGER|EVENT)\b|BEGIN\s+NOT\s+ATOMIC\b"
        r"|(?:\w+\s*:\s*)?(?:IF|CASE|LOOP|WHILE|REPEAT|FOR)\b)",
        re.I,
    ),
}

# Opaque spans the scanner steps over, kept for masking compound statements.
_COMMENT, _STRING, _NAME = "comment", "string", "name"


@functools.lru_cache(maxsize=32)
def _special_pattern(dialect: str, delimiter_start: str) -> re.Pattern[str]:
    """Characters where something other than plain text may start."""
    chars = _SPECIALS[dialect] + delimiter_start
    return re.compile("[" + re.escape("".join(sorted(set(chars)))) + "]")


@functools.lru_cache(maxsize=32)
def _plain_run_pattern(dialect: str, delimiter_start: str) -> re.Pattern[str]:
    """A run of plain text and complete simple strings and quoted names, matched in C.

    Possessive quantifiers never backtrack, so a multi-megabyte INSERT costs one
    match call, not one Python step per string. It stops before anything that
    needs a decision (a comment, an E'' or dollar-quoted string, an unterminated
    string, the delimiter), which the scanner then handles one at a time.
    """
    excluded = set(_SPECIALS[dialect] + delimiter_start)
    parts = []
    if dialect == "postgresql":
        excluded |= set("eE")  # E'...' strings have backslash escapes
        parts.append("[eE](?!')")
    for char, follower in (("-", "-"), ("/", r"\*")):
        if char != delimiter_start:
            parts.append(f"{re.escape(char)}(?!{follower})")
    parts.append("[^" + re.escape("".join(sorted(excluded))) + "]++")
    if dialect == "mysql":
        parts += [r"'[^'\\]*+(?:(?:\\.|'')[^'\\]*+)*+'", r'"[^"\\]*+(?:(?:\\.|"")[^"\\]*+)*+"']
    else:
        parts += [r"'[^']*+(?:''[^']*+)*+'", r'"[^"]*+(?:""[^"]*+)*+"']
    if dialect != "postgresql":
        parts.append(r"`[^`]*+(?:``[^`]*+)*+`")
    if dialect == "sqlite":
        parts.append(r"\[[^\]]*+\]")
    return re.compile("(?:" + "|".join(parts) + ")*+", re.S)


class _Splitter:
    def __init__(self, text: str, dialect: str) -> None:
        self.text = text
        self.dialect = dialect
        self._set_delimiter(";")
        self._line = 1
        self._line_offset = 0

    def _set_delimiter(self, delimiter: str) -> None:
        self.delimiter = delimiter
        self._special = _special_pattern(self.dialect, delimiter[0])
        self._plain_run = _plain_run_pattern(self.dialect, delimiter[0])

    # Statement boundaries ----------------------------------------------------------------

    def run(self) -> list[Statement]:
        text, statements = self.text, []
        start = self.next_start(0)
        while start is not None:
            if self.delimiter == ";" and _COMPOUND_HEAD[self.dialect].match(text, start):
                end = self._compound_end(start)
            else:
                end = self._piece_end(start)
            sql = text[start:end].rstrip()
            statements.append(Statement(sql, self._line_at(start), start))
            start = self.next_start(end + len(self.delimiter))
        return statements

    def next_start(self, pos: int) -> int | None:
        """Where the next statement starts at or after ``pos`` (None: no more).

        Skips whitespace, comments, empty statements such as ";;" and MySQL's
        DELIMITER directives (which it obeys).
        """
        text, size = self.text, len(self.text)
        while pos < size:
            start = self._skip_blank(pos)
            if start >= size:
                return None
            if text.startswith(self.delimiter, start):
                pos = start + len(self.delimiter)
                continue
            if self.dialect == "mysql":
                directive = _DELIMITER_DIRECTIVE.match(text, start)
                if directive:
                    self._set_delimiter(directive.group(1))
                    pos = directive.end()
                    continue
            return start
        return None

    def _line_at(self, offset: int) -> int:
        self._line += self.text.count("\n", self._line_offset, offset)
        self._line_offset = offset
        return self._line

    def _error(self, offset: int, message: str) -> SplitError:
        return SplitError(self.text.count("\n", 0, offset) + 1, message)

    def _skip_blank(self, pos: int) -> int:
        """Skip whitespace and comments; return where the next statement starts."""
        text, size = self.text, len(self.text)
        while pos < size:
            space = _SPACE.match(text, pos)
            if space:
                pos = space.end()
                continue
            after = self._comment_end(pos)
            if after is None:
                return pos
            pos = after
        return pos

    def _comment_end(self, i: int) -> int | None:
        """If a comment starts at ``i``, where it ends; else None."""
        text = self.text
        two = text[i : i + 2]
        if two == "--":
            if self.dialect == "mysql" and not (i + 2 >= len(text) or text[i + 2] <= " "):
                return None  # MySQL needs whitespace after "--": 1--1 is arithmetic
            return self._line_end(i)
        if text[i] == "#" and self.dialect == "mysql":
            return self._line_end(i)
        if two == "/*":
            if self.dialect == "mysql" and text.startswith("/*!", i):
                return None  # an executable comment is a statement, not a comment
            return self._block_comment_end(i)
        return None

    def _line_end(self, i: int) -> int:
        end = self.text.find("\n", i)
        return len(self.text) if end < 0 else end

    def _block_comment_end(self, i: int) -> int:
        text = self.text
        if self.dialect != "postgresql":
            end = text.find("*/", i + 2)
            return len(text) if end < 0 else end + 2
        depth, pos = 0, i
        for part in _NESTED_COMMENT_PART.finditer(text, i):
            if part.start() < pos:
                continue  # "/*/" must not count its "*" twice
            depth += 1 if part.group() == "/*" else -1
            pos = part.end()
            if depth == 0:
                return pos
        return len(text)

    def _piece_end(self, pos: int) -> int:
        """Index of the next delimiter outside strings and comments (or the text's end).

        Plain runs are skipped in C; only what needs a decision comes back here.
        """
        text, delimiter = self.text, self.delimiter
        size, plain_run = len(text), self._plain_run.match
        while True:
            pos = plain_run(text, pos).end()  # type: ignore[union-attr]  # matches ""
            if pos >= size:
                return size
            if text.startswith(delimiter, pos):
                return pos
            end, _ = self._opaque_end(pos)
            if end is None:
                pos += 1  # a lone "-", "/", "$", or the E of PostgreSQL's E'...'
                if text.startswith("'", pos):  # the quote after an E: let it decide
                    end, _ = self._opaque_end(pos)
                    pos = end if end is not None else pos + 1
            else:
                pos = end

    def _piece_end_with_spans(self, pos: int, spans: list[tuple[str, int, int]]) -> int:
        """Like _piece_end, noting each string, name and comment stepped over."""
        text, delimiter, search = self.text, self.delimiter, self._special.search
        while True:
            found = search(text, pos)
            if found is None:
                return len(text)
            i = found.start()
            if text.startswith(delimiter, i):
                return i
            end, kind = self._opaque_end(i)
            if end is None:
                pos = i + 1
                continue
            spans.append((kind, i, end))
            pos = end

    def _opaque_end(self, i: int) -> tuple[int | None, str]:
        """If a string, quoted name, comment or dollar quote starts at ``i``: its end."""
        text, char, dialect = self.text, self.text[i], self.dialect
        if char == "'":
            escaped = dialect == "mysql" or (
                dialect == "postgresql" and i > 0 and text[i - 1] in "eE"
                and not (i > 1 and _is_ident_char(text[i - 2]))
            )
            return self._quoted_end(i, _SINGLE_BACKSLASH if escaped else _SINGLE_STANDARD,
                                    "string"), _STRING
        if char == '"':
            pattern = _DOUBLE_BACKSLASH if dialect == "mysql" else _DOUBLE_STANDARD
            return self._quoted_end(i, pattern, "quoted name or string"), _NAME
        if char == "`":
            return self._quoted_end(i, _BACKTICK, "quoted name"), _NAME
        if char == "[":
            return self._quoted_end(i, _BRACKET, "[quoted name]"), _NAME
        if char == "$" and dialect == "postgresql":
            return self._dollar_end(i), _STRING
        if dialect == "mysql" and text.startswith("/*!", i):
            return self._block_comment_end(i), _STRING  # executed, so never dropped
        return self._comment_end(i), _COMMENT

    def _quoted_end(self, i: int, pattern: re.Pattern[str], what: str) -> int:
        match = pattern.match(self.text, i)
        if match is None:
            raise self._error(i, f"unterminated {what} starting here")
        return match.end()

    def _dollar_end(self, i: int) -> int | None:
        if i > 0 and _is_ident_char(self.text[i - 1]):
            return None  # part of a name such as a$b, or a parameter's tail
        tag = _DOLLAR_TAG.match(self.text, i)
        if tag is None:
            return None  # $1 and the like
        end = self.text.find(tag.group(), tag.end())
        if end < 0:
            raise self._error(i, f"unterminated dollar quote {tag.group()} starting here")
        return end + len(tag.group())

    # Compound bodies -----------------------------------------------------------------------

    def _compound_end(self, start: int) -> int:
        tracker = BlockTracker(self.dialect)
        pos = start
        while True:
            spans: list[tuple[str, int, int]] = []
            end = self._piece_end_with_spans(pos, spans)
            at_end = end >= len(self.text)
            if tracker.feed(self._masked(pos, end, spans), final=at_end) or at_end:
                return end
            pos = end + 1

    def _masked(self, start: int, end: int, spans: list[tuple[str, int, int]]) -> str:
        """The piece with comments blanked and strings and quoted names emptied."""
        parts, pos = [], start
        for kind, left, right in spans:
            parts.append(self.text[pos:left])
            width = right - left
            if kind == _COMMENT:
                parts.append(" " * width)
            else:
                quote = "'" if kind == _STRING else '"'
                parts.append(quote + "x" * max(width - 2, 0) + quote)
            pos = right
        parts.append(self.text[pos:end])
        return "".join(parts)
