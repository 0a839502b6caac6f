"""Swift's listing walk over a table of names: limit, marker, end_marker, prefix, delimiter (rolled up into
``subdir`` entries) and reverse, with as few queries as the delimiter allows."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ListParams:
    limit: int
    marker: str = ""
    end_marker: str = ""
    prefix: str = ""
    delimiter: str = ""
    reverse: bool = False


def _after(prefix: str) -> str:
    """The least string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def walk(conn: sqlite3.Connection, table: str, columns: str, p: ListParams) -> list[dict[str, Any]]:
    """Rows of ``table`` (not deleted), each a dict of ``columns``; a rolled-up directory is ``{"subdir": name}``."""
    out: list[dict[str, Any]] = []
    # Bounds: lower (inclusive or not), upper (exclusive); reverse walks down from the upper.
    low, low_incl = p.marker, False
    high = p.end_marker
    if p.reverse:
        low, high = p.end_marker, p.marker
        low_incl = False
    if p.prefix:
        if not low or low < p.prefix:
            low, low_incl = p.prefix, True
        top = _after(p.prefix)
        if not high or high > top:
            high = top
    while len(out) < p.limit:
        where, args = ["deleted = 0"], []
        if low:
            where.append("name >= ?" if low_incl else "name > ?")
            args.append(low)
        if high:
            where.append("name < ?")
            args.append(high)
        want = p.limit - len(out)
        sql = (f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)} "
               f"ORDER BY name {'DESC' if p.reverse else 'ASC'} LIMIT ?")
        rows = conn.execute(sql, [*args, want]).fetchall()
        if not rows:
            break
        rolled = False
        for row in rows:
            name: str = row["name"]
            if p.delimiter:
                end = name.find(p.delimiter, len(p.prefix))
                if end >= 0:
                    subdir = name[: end + len(p.delimiter)]
                    if subdir != p.marker or p.reverse:
                        out.append({"subdir": subdir})
                    # Skip every other name under this directory, then query again.
                    if p.reverse:
                        high = subdir
                    else:
                        low, low_incl = _after(subdir), True
                    rolled = True
                    break
            out.append(dict(row))
            if p.reverse:
                high = name
            else:
                low, low_incl = name, False
        if not rolled and len(rows) < want:
            break
    return out[: p.limit]
