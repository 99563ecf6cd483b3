"""Where a compound statement ends: BEGIN ... END, CASE ... END, IF ... END IF, ...

The splitter hands over the statements that can hold a compound body (SQLite
triggers, MySQL routines, triggers and events, PostgreSQL ``BEGIN ATOMIC``
bodies and rules), piece by piece up to each ``;``, with strings and comments
already masked. sqlparse's lexer classifies the words; the tracker follows the
blocks. A word used as a name (``t.end``, ``end = 1``, ``WHERE end < 0``)
opens and closes nothing.

In MySQL, IF, CASE, LOOP, WHILE, REPEAT and FOR open a block only where a
statement starts: ``IF(a, b, c)``, ``DROP TABLE IF EXISTS`` and ``CASE`` inside an
expression open nothing. Where the routine body has no BEGIN (``... FOR EACH
ROW IF ... END IF``) its first word follows a header with no fixed last word, so
there the word itself and what follows it decide.
"""

from __future__ import annotations

from typing import Any

# Words after which a statement starts (ATOMIC: MariaDB's BEGIN NOT ATOMIC).
_STATEMENT_STARTS = frozenset({";", "BEGIN", "ATOMIC", "THEN", "ELSE", "DO", ":", "LOOP",
                               "REPEAT"})
# Words that open a MySQL block and may follow its END (END IF, END CASE, END REPEAT).
_MYSQL_BLOCKS = frozenset({"IF", "LOOP", "WHILE", "REPEAT", "FOR", "CASE"})
_IDENTIFIER_NEIGHBOURS = frozenset({".", "=", ",", ")", ":="})
# DECLARE ... HANDLER FOR <condition>, ... <statement>: after these words comes (the
# rest of) a condition value (NOT FOUND, SQLSTATE VALUE '02000'), not the statement.
_CONDITION_PREFIXES = frozenset({"FOR", ",", "NOT", "SQLSTATE", "VALUE"})
_CASE_EXPRESSION = "CASE expression"  # its THEN and ELSE start no statement


class BlockTracker:
    """Follows the block structure of one compound statement, piece by piece."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.stack: list[str] = []
        self.parens = 0
        self.previous: str | None = None
        self.previous_started = False  # whether the previous word began a statement
        self.in_handler = False  # between HANDLER FOR and the handler's statement

    def feed(self, masked_piece: str, *, final: bool) -> bool:
        """Take the next piece (up to a ``;``); True when the statement is complete there."""
        words = _significant_tokens(masked_piece)
        if not final:
            words.append(";")
        skip_next = False
        for index, word in enumerate(words):
            starts = self._starts_statement(word)
            skip_next = False if skip_next else self._take(word, starts, words, index)
            self.in_handler = (self.in_handler and not starts) or (
                word == "FOR" and self.previous == "HANDLER")
            self.previous, self.previous_started = word, starts
        return not final and not self.stack and self.parens == 0

    def _starts_statement(self, word: str) -> bool:
        """Whether ``word`` is the first word of a statement inside a compound body."""
        if self.parens or (self.stack and self.stack[-1] == _CASE_EXPRESSION):
            return False
        if self.in_handler:
            return word != "," and self.previous not in _CONDITION_PREFIXES
        if self.previous == "DO":  # WHILE ... DO, FOR ... DO, an event's DO; not DO expr
            return not self.previous_started
        return self.previous in _STATEMENT_STARTS

    def _take(self, word: str, starts: bool, words: list[str], index: int) -> bool:
        """Update the state for one token; True when the next token is part of this one."""
        following = words[index + 1] if index + 1 < len(words) else None
        if word == "(":
            self.parens += 1
        elif word == ")":
            self.parens = max(0, self.parens - 1)
        elif self.previous == ".":
            pass  # t.begin, new.end: column names
        elif word == "END":
            after = words[index + 2] if index + 2 < len(words) else None
            return self._close(following, after)
        elif following in _IDENTIFIER_NEIGHBOURS:
            pass  # begin = 1, (begin, end): names, not blocks
        elif word == "BEGIN":
            if self.parens == 0 and (self.dialect != "postgresql" or following == "ATOMIC"):
                self.stack.append("BEGIN")
        elif self.dialect == "mysql" and word in _MYSQL_BLOCKS and (
                starts or (not self.stack and not self.parens and _opens_body(words, index))):
            self.stack.append(word)
        elif word == "CASE":
            self.stack.append(_CASE_EXPRESSION)
        return False

    def _close(self, following: str | None, after: str | None) -> bool:
        if not self.stack:
            return False
        # A CASE expression's END may be followed by anything. A block's END ends its
        # statement: it is followed by ";" (in MySQL also by END's block word, or by a
        # label and ";"). Anything else means "end" is a name, as in "WHERE end < 0".
        named = self.dialect == "mysql" and following in _MYSQL_BLOCKS  # END IF, END CASE
        if self.stack[-1] != _CASE_EXPRESSION and following not in (";", None) and not (
            named or (self.dialect == "mysql" and _is_name(following) and after in (";", None))
        ):
            return False
        self.stack.pop()
        return named  # END REPEAT: one closing


def _opens_body(words: list[str], index: int) -> bool:
    """Whether the block word at ``words[index]`` begins a routine body without BEGIN."""
    word, rest = words[index], words[index + 1 :]
    if word == "REPEAT":
        return rest[:1] != ["("]  # not the REPEAT() function
    if word == "FOR":
        return rest[1:2] == ["IN"]  # MariaDB's FOR i IN ..., not FOR EACH ROW
    if word == "IF":  # IF cond THEN; not IF(a, b, c), nor IF [NOT] EXISTS in a header or DDL
        depth = 0
        for later in rest:
            depth += (later == "(") - (later == ")")
            if depth == 0 and later in ("THEN", "IF", "CASE", ";"):
                return later == "THEN"
        return False
    if word == "CASE":  # an expression's END comes before the piece's ";", END CASE after it
        open_cases = 1
        for later in rest:
            open_cases += (later == "CASE") - (later == "END")
            if open_cases == 0 or later == ";":
                return open_cases > 0
        return False
    return True  # LOOP, WHILE: reserved words that only begin loops


def _is_name(token: str | None) -> bool:
    return bool(token) and (token[0].isalpha() or token[0] in "_`")  # type: ignore[index]


def _significant_tokens(masked: str) -> list[str]:
    """Words (upper case) and punctuation of masked SQL, via sqlparse's lexer.

    sqlparse returns some word sequences as one token (``IF NOT EXISTS``, ``END IF``,
    ``HANDLER FOR``, ``ORDER BY``, which ones depends on its version) and a label's
    colon with the next word (``lbl :LOOP``); the tracker reasons about single words.
    """
    from sqlparse import tokens as T
    from sqlparse.lexer import Lexer

    result: list[str] = []
    lexer: Any = Lexer.get_default_instance()  # type: ignore[no-untyped-call]
    for ttype, value in lexer.get_tokens(masked):
        if ttype in T.Whitespace or ttype in T.Comment or ttype in T.Newline:
            continue
        if ttype in T.Name.Placeholder and value.startswith(":"):
            result.append(":")
            value = value[1:]
        result.extend(value.upper().split() if ttype in T.Keyword or ttype in T.Name
                      else value.split())
    return result
