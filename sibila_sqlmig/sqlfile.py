"""The one reader of SQL files: read, normalise, checksum, decode.

Normalising means two things only (README: The tracking table): a leading UTF-8 BOM
is dropped, and CRLF and lone CR become LF. The checksum is the lowercase
hex SHA-256 of the normalised bytes, so for an ordinary LF file it is what
``sha256sum up.sql`` prints, and a Windows checkout does not look edited.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from .errors import MigrationFilesError, Problem
from .model import SqlFile, Stamp

_BOM = b"\xef\xbb\xbf"
# A small file's text is kept from the first read and is what runs. A larger one
# (a data migration) is read again when it is checked and when it runs, so memory
# stays near the largest file however many there are.
SMALL_FILE = 64 * 1024
CHANGED = "changed while sibila-sqlmig was running; run the command again"


def normalise_bytes(data: bytes) -> bytes:
    """Remove a leading UTF-8 BOM and turn CRLF and lone CR into LF; change nothing else."""
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def normalise_text(text: str) -> str:
    """``normalise_bytes`` for text already decoded (``split_sql`` accepts raw text)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def sql_checksum(data: bytes) -> str:
    """The stored checksum of a SQL file's raw bytes (normalised, then SHA-256)."""
    return _checksum(normalise_bytes(data))


def _checksum(normalised: bytes) -> str:
    return hashlib.sha256(normalised).hexdigest()


def _stamp(stream: BinaryIO) -> Stamp:
    status = os.fstat(stream.fileno())
    return status.st_size, status.st_mtime_ns


MISSING = "missing; every version folder needs migration.yaml, up.sql and down.sql"


def _read(location: str) -> tuple[bytes, Stamp]:
    """The normalised bytes of a file and its stamp; OSError as a MigrationFilesError."""
    try:
        with open(location, "rb") as stream:
            # Stamped before reading: a rewrite during the read then shows as a change
            # when the file is read again, instead of passing as what was read.
            stamp = _stamp(stream)
            return normalise_bytes(stream.read()), stamp
    except FileNotFoundError:
        raise MigrationFilesError([Problem(Path(location), MISSING)]) from None
    except OSError as error:
        raise MigrationFilesError([Problem(Path(location),
                                           f"cannot be read: {error.strerror}")]) from None


def decode(location: str, data: bytes) -> str:
    """Decode normalised UTF-8; a MigrationFilesError names the line of a bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise MigrationFilesError([Problem(Path(location), f"is not UTF-8 text (byte "
                                           f"{error.start}); save it as UTF-8", line)]) \
            from None


def read_sql_file(location: str | Path) -> tuple[SqlFile, str]:
    """Read a SQL file once: its value, and the text to judge it by.

    A small file's value keeps its text, and that text is what is judged. Of a
    large file only the checksum is kept; the text to judge is its first part
    (``read_text`` gives the rest, and checks UTF-8, when the file is needed).
    Raises MigrationFilesError (missing, unreadable, not UTF-8).
    """
    location = str(location)
    data, stamp = _read(location)
    checksum = _checksum(data)
    if len(data) <= SMALL_FILE:
        text = decode(location, data)
        return SqlFile(location, checksum, stamp, text), text
    # The head ends at a line's end, so that no "--", "#" or DELIMITER is cut into
    # something that looks like a statement; a block comment cut open only makes the
    # head look empty, and then the caller judges the whole text.
    head = data[: data.rfind(b"\n", 0, SMALL_FILE) + 1]
    return SqlFile(location, checksum, stamp, None), head.decode("utf-8", errors="replace")


def read_text(sql_file: SqlFile) -> str:
    """The file's normalised text: kept, or read again now and refused if it changed."""
    if sql_file.text is not None:
        return sql_file.text
    data, stamp = _read(sql_file.location)
    if stamp != sql_file.stamp:
        raise MigrationFilesError([Problem(sql_file.path, CHANGED)])
    return decode(sql_file.location, data)
