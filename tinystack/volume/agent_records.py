"""What the volume agent keeps on disk per resource (upload and failure records), and how its resource keys
(``volume:<id>``, ``snapshot:<id>``) read."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Cinder keeps 255 characters of a reason; the log has the rest.
REASON_MAX = 255

Spec = dict[str, Any]


def split_key(key: str) -> tuple[str, str]:
    kind, _, rid = key.partition(":")
    return kind, rid


def reason_of(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:REASON_MAX]


@dataclass
class Record:
    """What this agent did for one volume or snapshot that the files cannot tell: kept on disk so a restarted
    agent neither uploads again nor forgets that a generation failed."""

    upload_seq: int = 0  # the newest upload done
    upload_error: dict[str, Any] | None = None  # {"seq", "reason"}: the newest upload that failed for good
    failed_gen: int | None = None
    reason: str | None = None
    restore_seq: int = 0  # backups (tinystack/volume/backup_agent.py): the newest restore written and synced


class Records:
    """One small JSON file per resource key, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / f"{key.replace(':', '-', 1)}.json"

    def load(self, key: str) -> Record:
        try:
            data = json.loads(self._path(key).read_text())
        except (FileNotFoundError, ValueError):
            return Record()
        known = Record.__dataclass_fields__
        return Record(**{k: v for k, v in data.items() if k in known})

    def save(self, key: str, record: Record) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, path)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()
