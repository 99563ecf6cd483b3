"""The normalised SHA-256 that catches edited migrations (DESIGN.md section 3)."""

from __future__ import annotations

import hashlib

_BOM = b"\xef\xbb\xbf"


def normalise_sql_bytes(data: bytes) -> bytes:
    """Remove a leading UTF-8 BOM and turn CRLF and lone CR into LF; change nothing else.

    A checkout on Windows (CRLF) or a file saved by an editor that adds a BOM must
    not look edited, and must run exactly like the LF file.
    """
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def checksum_of_normalised(data: bytes) -> str:
    """Lowercase hex SHA-256 of bytes that are already normalised."""
    return hashlib.sha256(data).hexdigest()


def sql_checksum(data: bytes) -> str:
    """The stored checksum of an up.sql file's raw bytes.

    For an LF file without BOM this equals what ``sha256sum up.sql`` prints.
    """
    return checksum_of_normalised(normalise_sql_bytes(data))
