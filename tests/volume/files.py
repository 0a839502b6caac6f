"""Reading and writing a volume's raw file at an offset, for tests that check what the agent did to the bytes."""

from __future__ import annotations

from pathlib import Path


def write_at(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def read_at(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)
