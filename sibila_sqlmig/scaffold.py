"""``create``: writing a new version folder, never outside the migrations folder."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

from .discovery import parse_version_folder
from .errors import UsageError
from .model import DOWN_FILE, HEADER_FILE, UP_FILE

SLUG_MAX = 60


def slugify(description: str) -> str:
    """``Add user authentication table`` -> ``add_user_authentication_table``.

    Only ASCII letters, digits and single underscores survive, so the slug can
    never hold a path separator or ``..``.
    """
    ascii_text = unicodedata.normalize("NFKD", description).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    return slug[:SLUG_MAX].rstrip("_")


def next_version(existing: list[str], style: str, now: datetime | None = None) -> str:
    """The next version string: zero-padded sequence, or a UTC timestamp."""
    numbers = [int(version) for version in existing]
    if style == "timestamp":
        moment = now or datetime.now(UTC)
        candidate = int(moment.strftime("%Y%m%d%H%M%S"))
        while candidate in numbers:
            candidate += 1
        return str(candidate)
    if not numbers:
        return "001"
    width = max(3, *(len(version) for version in existing))
    return str(max(numbers) + 1).zfill(width)


def create_version(migrations_dir: Path, description: str, *, style: str) -> Path:
    """Make ``NNN_slug/`` with migration.yaml, up.sql and down.sql; return the folder."""
    slug = slugify(description)
    if not slug:
        raise UsageError(f"Cannot make a folder name from {description!r}: describe the "
                         "change in words, e.g. create \"Add users table\".")
    migrations_dir.mkdir(parents=True, exist_ok=True)
    existing = [parsed[0] for entry in migrations_dir.iterdir()
                if entry.is_dir() and (parsed := parse_version_folder(entry.name))]
    version = next_version(existing, style)
    folder = migrations_dir / f"{version}_{slug}"
    if folder.resolve().parent != migrations_dir.resolve():
        raise UsageError(f"Refusing to write {folder}: it is outside {migrations_dir}.")
    folder.mkdir()
    header = f"description: {json.dumps(description.strip(), ensure_ascii=False)}\n"
    (folder / HEADER_FILE).write_text(
        header + "# transaction: false   # uncomment for statements that cannot run in a "
        "transaction\n"
        "# rollback: noop        # nothing to undo: rollback only deletes the row "
        "(or: irreversible)\n", encoding="utf-8")
    (folder / UP_FILE).write_text(
        f"-- {version}: {description.strip()}\n-- Write the change here. The whole file runs in "
        "one transaction.\n", encoding="utf-8")
    (folder / DOWN_FILE).write_text(
        f"-- Reverses {version}: write the statements that undo up.sql.\n"
        "-- Nothing to undo? Put 'rollback: noop' in migration.yaml. Cannot be undone? Put\n"
        "-- 'rollback: irreversible' there. A down.sql of only comments without either key\n"
        "-- refuses to roll back.\n", encoding="utf-8")
    return folder
