"""Where a compound statement ends: BEGIN ... END, CASE ... END, IF ... END IF, ...

The splitter hands over the statements that can hold a compound body (SQLite
triggers, MySQL routines, triggers and events, PostgreSQL ``BEGIN ATOMIC``
bodies and rules), piece by piece up to each ``;``, with strings and comments
already masked. sqlparse's lexer classifies the words; the tracker follows the
blocks. A word used as a name (``t.end``, ``end = 1``, ``WHERE end < 0``)
opens and closes nothing.
"""

from __future__ import annotations

from typing import Any

_STATEMENT_STARTS = frozenset({";", "BEGIN", "THEN", "ELSE", "DO", ":", "LOOP", "REPEAT"})
_MYSQL_BLOCKS = frozenset({"IF", "LOOP", "WHILE", "REPEAT", "FOR"})
_IDENTIFIER_NEIGHBOURS = frozenset({".", "=", ",", ")", ":="})


class BlockTracker:
    """Follows the block structure of one compound statement, piece by piece."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.stack: list[str] = []
        self.parens = 0
        self.previous: str | None = None

    def feed(self, masked_piece: str, *, final: bool) -> bool:
        """Take the next piece (up to a ``;``); True when the statement is complete there."""
        words = _significant_tokens(masked_piece)
        if not final:
            words.append(";")
        skip_next = False
        for index, word in enumerate(words):
            if skip_next:
                skip_next = False
                self.previous = word
                continue
            following = words[index + 1] if index + 1 < len(words) else None
            after = words[index + 2] if index + 2 < len(words) else None
            skip_next = self._take(word, following, after)
            self.previous = word
        return not final and not self.stack and self.parens == 0

    def _take(self, word: str, following: str | None, after: str | None) -> bool:
        """Update the state for one token; True when the next token is part of this one."""
        if word == "(":
            self.parens += 1
        elif word == ")":
            self.parens = max(0, self.parens - 1)
        elif self.previous == ".":
            pass  # t.begin, new.end: column names
        elif word == "END" or word.startswith("END "):
            return self._close(word, following, after)
        elif following in _IDENTIFIER_NEIGHBOURS:
            pass  # begin = 1, (begin, end): names, not blocks
        elif word == "BEGIN":
            if self.parens == 0 and (self.dialect != "postgresql" or following == "ATOMIC"):
                self.stack.append("BEGIN")
        elif word == "CASE":
            self.stack.append("CASE")
        elif (self.dialect == "mysql" and word in _MYSQL_BLOCKS and self.stack
              and self.previous in _STATEMENT_STARTS):
            self.stack.append(word)
        return False

    def _close(self, word: str, following: str | None, after: str | None) -> bool:
        if not self.stack:
            return False
        # A CASE's END may be followed by anything. A block's END ends its statement:
        # it is followed by ";" (in MySQL also by END's block word, or by a label and
        # ";"). Anything else means "end" is a name, as in "WHERE end < 0".
        if self.stack[-1] != "CASE" and following not in (";", None) and not (
            self.dialect == "mysql"
            and ((word == "END" and following in _MYSQL_BLOCKS)
                 or (_is_name(following) and after in (";", None)))
        ):
            return False
        self.stack.pop()
        return word == "END" and following in _MYSQL_BLOCKS  # END REPEAT: one closing


def _is_name(token: str | None) -> bool:
    return bool(token) and (token[0].isalpha() or token[0] in "_`")  # type: ignore[index]


def _significant_tokens(masked: str) -> list[str]:
    """Words (upper case) and punctuation of masked SQL, via sqlparse's lexer."""
    from sqlparse import tokens as T
    from sqlparse.lexer import Lexer

    result: list[str] = []
    lexer: Any = Lexer.get_default_instance()  # type: ignore[no-untyped-call]
    for ttype, value in lexer.get_tokens(masked):
        if ttype in T.Whitespace or ttype in T.Comment or ttype in T.Newline:
            continue
        if ttype in T.Keyword or ttype in T.Name:
            result.append(" ".join(value.upper().split()))
        else:
            result.append(value)
    return result
