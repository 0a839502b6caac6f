"""Unix socket paths that fit: a socket's path holds at most 107 bytes (``sun_path``), and a state or instance
directory deep in a file system (a long mount point, a test's temporary directory) makes longer ones, which
``bind`` refuses ("AF_UNIX path too long")."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Bytes a socket's path may hold: sun_path's 108 less its terminating NUL.
SUN_PATH_MAX = 107


def short_root() -> Path:
    """Where short socket directories go: /run/tinystack, or a per-user directory in /tmp without root."""
    return Path("/run/tinystack") if os.access("/run", os.W_OK) else Path(f"/tmp/tinystack-{os.getuid()}")


def fitting_dir(directory: Path, longest: str, limit: int = SUN_PATH_MAX) -> Path:
    """``directory`` when ``directory/longest`` fits in ``limit`` bytes, else a short directory named by a hash
    of ``directory``: the same on every start, so a restarted process finds the sockets its predecessor made."""
    if len(os.fsencode(directory / longest)) <= limit:
        return directory
    return short_root() / hashlib.sha256(str(directory).encode()).hexdigest()[:16]


def fitting(path: Path) -> Path:
    """``path``, or its name in the short directory for its parent (the caller makes the directory)."""
    return fitting_dir(path.parent, path.name) / path.name
