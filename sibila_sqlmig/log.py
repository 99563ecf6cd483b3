"""Logging as Python libraries do it, without importing logging for nobody.

The package logs to ``sibila_sqlmig.<module>`` loggers and adds no handler
but logging's NullHandler (so that its warnings never reach stderr through
``logging.lastResort`` in a process that configured nothing): INFO for each
version applied or rolled back, DEBUG for connecting (the URL redacted), the
migration lock and each statement. An application that logs has imported
``logging`` already; one that has not cannot have configured a handler, and
importing the module for it would cost every command 9 ms (benchmarks/run.py,
startup) for nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

DEBUG, INFO, WARNING = 10, 20, 30  # logging's levels, without importing it


_QUIET_BY_DEFAULT: list[bool] = []  # set once the package's NullHandler is in place


def logger(name: str) -> Any:
    """The ``logging`` logger ``name``, or None when the application does not log."""
    logging = sys.modules.get("logging")
    if logging is None:
        return None
    if not _QUIET_BY_DEFAULT:
        # As libraries do: without it, a WARNING in a process that configured no logging
        # (a driver imported logging) would go to stderr through logging.lastResort,
        # beside the same line the command line prints.
        logging.getLogger("sibila_sqlmig").addHandler(logging.NullHandler())
        _QUIET_BY_DEFAULT.append(True)
    return logging.getLogger(name)


def tell(name: str, notify: Callable[[str], None] | None, text: str, *,
         level: int = WARNING) -> None:
    """One line for whoever listens (``notify``: the command line prints it on stderr),
    and the same line to logger ``name`` when the application logs."""
    if notify is not None:
        notify(text)
    found = logger(name)
    if found is not None:
        found.log(level, "%s", text)


def debug(name: str, message: str, *args: object) -> None:
    """Log a DEBUG record to logger ``name`` when the application logs."""
    found = logger(name)
    if found is not None:
        found.debug(message, *args)
