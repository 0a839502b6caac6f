"""The on-disk form of ring and builder files: versioned, safe to load (JSON and raw integer arrays, no pickle).

Layout, gzip-compressed: the magic ``TSRING``, a format version byte, a newline, a 4-byte big-endian header length,
the JSON header, then the arrays the header lists (name, dtype, count) back to back in little-endian order.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import sys
from array import array
from pathlib import Path
from typing import Any

MAGIC = b"TSRING"
FORMAT_VERSION = 1
_ITEMSIZE = {"uint8": 1, "uint16": 2, "uint32": 4}
_TYPECODE = {"uint8": "B", "uint16": "H", "uint32": "I"}
_MAX_HEADER = 64 * 1024 * 1024


class RingFileError(ValueError):
    """A ring or builder file that is not ours, of an unknown version, or damaged."""


def write(path: str | Path, kind: str, header: dict[str, Any], arrays: list[tuple[str, str, bytes]]) -> None:
    """Atomically write ``kind`` ("ring" or "builder") with ``header`` and ``arrays`` of (name, dtype, LE bytes)."""
    meta = dict(header, kind=kind, format=FORMAT_VERSION,
                arrays=[{"name": n, "dtype": t, "count": len(b) // _ITEMSIZE[t]} for n, t, b in arrays])
    head = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
            gz.write(MAGIC + bytes([FORMAT_VERSION]) + b"\n" + struct.pack(">I", len(head)) + head)
            for _, _, data in arrays:
                gz.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read(path: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The header and the arrays (name -> little-endian bytes) of a file written by :func:`write`."""
    try:
        with gzip.open(path, "rb") as gz:
            blob = gz.read()
    except (OSError, EOFError) as exc:
        raise RingFileError(f"{path}: not a readable ring file ({exc})") from None
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 6:
        raise RingFileError(f"{path}: not a tinystack ring file")
    version = blob[len(MAGIC)]
    if version != FORMAT_VERSION:
        raise RingFileError(f"{path}: format version {version} is not supported (this code reads {FORMAT_VERSION})")
    start = len(MAGIC) + 2
    (hlen,) = struct.unpack_from(">I", blob, start)
    if hlen > _MAX_HEADER or start + 4 + hlen > len(blob):
        raise RingFileError(f"{path}: damaged header")
    try:
        header = json.loads(blob[start + 4:start + 4 + hlen])
    except ValueError:
        raise RingFileError(f"{path}: damaged header") from None
    if not isinstance(header, dict) or header.get("kind") != kind:
        raise RingFileError(f"{path}: not a {kind} file (it is a {header.get('kind') if isinstance(header, dict) else '?'})")
    out: dict[str, bytes] = {}
    pos = start + 4 + hlen
    for spec in header.get("arrays", []):
        try:
            size = int(spec["count"]) * _ITEMSIZE[spec["dtype"]]
        except (KeyError, TypeError, ValueError):
            raise RingFileError(f"{path}: damaged array table") from None
        if pos + size > len(blob):
            raise RingFileError(f"{path}: truncated")
        out[str(spec["name"])] = blob[pos:pos + size]
        pos += size
    if pos != len(blob):
        raise RingFileError(f"{path}: trailing data")
    return header, out


def to_array(data: bytes, dtype: str) -> array:  # type: ignore[type-arg]
    """Little-endian bytes -> a native ``array`` (byte-swapped on big-endian hosts)."""
    arr = array(_TYPECODE[dtype])
    arr.frombytes(data)
    if sys.byteorder == "big":
        arr.byteswap()
    return arr
