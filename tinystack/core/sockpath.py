"""Unix socket paths that fit: a socket's path holds at most 107 bytes (``sun_path``), and a state or instance
directory deep in a file system (a long mount point, a test's temporary directory) makes longer ones, which
``bind`` refuses ("AF_UNIX path too long")."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Below sun_path's 108 bytes less its NUL, with room for a suffix a caller adds (``.lock``, a mux name).
LIMIT = 100


def short_root() -> Path:
    """Where short socket directories go: /run/tinystack, or a per-user directory in /tmp without root."""
    return Path("/run/tinystack") if os.access("/run", os.W_OK) else Path(f"/tmp/tinystack-{os.getuid()}")


def fitting_dir(directory: Path, longest: str) -> Path:
    """``directory`` when ``directory/longest`` fits, else a short directory named by a hash of ``directory``:
    the same on every start, so a restarted process finds the sockets its predecessor made."""
    if len(str(directory / longest)) < LIMIT:
        return directory
    return short_root() / hashlib.sha256(str(directory).encode()).hexdigest()[:16]


def fitting(path: Path) -> Path:
    """``path``, or its name in the short directory for its parent (the caller makes the directory)."""
    return fitting_dir(path.parent, path.name) / path.name
