"""``lock: table``: the migration lock as a leased row (being written by a helper)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backends.base import Backend


@contextlib.contextmanager
def table_lock(backend: Backend) -> Iterator[None]:
    """Placeholder: replaced by the real implementation."""
    raise NotImplementedError("lock: table")
    yield
