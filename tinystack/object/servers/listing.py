"""Swift's listing walk over a table of names: limit, marker, end_marker, prefix, delimiter (rolled up into
``subdir`` entries) and reverse, with as few queries as the delimiter allows; and the listing written in the
client's format (JSON, XML, plain) by SQLite itself, so that 10,000 rows never become Python objects.

A listing body is ``head + sep.join(rows) + tail``, each row's text made by an SQL expression (a ``Layout``);
without a delimiter the rows are joined inside SQLite (``group_concat`` over the ordered, limited query), with
one the walk fetches each row's text beside its name and writes the rolled-up directories itself."""

from __future__ import annotations

import datetime
import functools
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

# The response header by which a storage server says it wrote the listing in the format asked for (``format=``);
# a proxy that finds it missing (a node of an older release) renders the rows itself.
FORMAT_HEADER = "X-Backend-Listing-Format"
TYPES = {"json": "application/json", "xml": "application/xml", "plain": "text/plain"}


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


def _bounds(p: ListParams) -> tuple[str, bool, str]:
    """(lower bound, whether it is inclusive, upper bound exclusive); "" for none. Reverse walks down from the
    upper one."""
    low, low_incl = p.marker, False
    high = p.end_marker
    if p.reverse:
        low, high = p.end_marker, p.marker
    if p.prefix:
        if not low or low < p.prefix:
            low, low_incl = p.prefix, True
        top = _after(p.prefix)
        if not high or high > top:
            high = top
    return low, low_incl, high


def _select(table: str, columns: str, p: ListParams, low: str, low_incl: bool, high: str,
            want: int) -> tuple[str, list[Any]]:
    where, args = ["deleted = 0"], []
    if low:
        where.append("name >= ?" if low_incl else "name > ?")
        args.append(low)
    if high:
        where.append("name < ?")
        args.append(high)
    sql = (f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)} "
           f"ORDER BY name {'DESC' if p.reverse else 'ASC'} LIMIT ?")
    return sql, [*args, want]


def walk_rows(conn: sqlite3.Connection, table: str, columns: str, p: ListParams) -> list[Any]:
    """Rows of ``table`` (not deleted) with ``columns``, the first of which must be the name; a rolled-up
    directory is its name as a ``str``."""
    out: list[Any] = []
    low, low_incl, high = _bounds(p)
    while len(out) < p.limit:
        want = p.limit - len(out)
        rows = conn.execute(*_select(table, columns, p, low, low_incl, high, want)).fetchall()
        if not rows:
            break
        rolled = False
        for row in rows:
            name: str = row[0]
            if p.delimiter:
                end = name.find(p.delimiter, len(p.prefix))
                if end >= 0:
                    subdir = name[: end + len(p.delimiter)]
                    if subdir != p.marker or p.reverse:
                        out.append(subdir)
                    # Skip every other name under this directory, then query again.
                    if p.reverse:
                        high = subdir
                    else:
                        low, low_incl = _after(subdir), True
                    rolled = True
                    break
            out.append(row)
            if p.reverse:
                high = name
            else:
                low, low_incl = name, False
        if not rolled and len(rows) < want:
            break
    return out[: p.limit]


def walk(conn: sqlite3.Connection, table: str, columns: str, p: ListParams) -> list[dict[str, Any]]:
    """Rows of ``table`` (not deleted), each a dict of ``columns``; a rolled-up directory is ``{"subdir": name}``."""
    return [{"subdir": r} if isinstance(r, str) else dict(r) for r in walk_rows(conn, table, columns, p)]


# --- the formats ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def iso_seconds(seconds: int | str) -> str:
    """Whole seconds since the epoch as ``2023-11-14T22:13:20``, kept: a listing's objects were mostly written in a
    few seconds, and formatting a date is most of what a row costs (SQLite's strftime more so)."""
    return datetime.datetime.fromtimestamp(int(seconds), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def register(conn: sqlite3.Connection) -> None:
    """The SQL functions the layouts use; called on every new connection."""
    conn.create_function("iso_seconds", 1, iso_seconds, deterministic=True)


_NORMAL = "'" + "[0-9]" * 10 + "." + "[0-9]" * 5 + "'"


def _iso_sql(column: str) -> str:
    """``0001700000000.12345`` -> ``2023-11-14T22:13:20.123450`` in SQL. Timestamps are stored in that fixed
    form (common.normalize_timestamp); anything else is read as a number of seconds."""
    return (f"CASE WHEN {column} GLOB {_NORMAL} THEN iso_seconds(substr({column}, 1, 10)) || '.' || "
            f"substr({column}, 12, 5) || '0' ELSE strftime('%Y-%m-%dT%H:%M:%f', CAST({column} AS REAL), "
            f"'unixepoch') || '000' END")


def _xml_sql(expr: str) -> str:
    # Most texts need no escaping, and looking costs less than three replace() copies of each.
    return (f"CASE WHEN {expr} GLOB '*[&<>]*' THEN replace(replace(replace({expr}, '&', '&amp;'), '<', '&lt;'), '>', "
            f"'&gt;') ELSE {expr} END")


def _xml_attr(text: str) -> str:
    return escape(text, {'"': "&quot;"})


@dataclass(frozen=True)
class Layout:
    """One format of one kind of listing: the SQL of one row's text, how the rows are joined and wrapped, and a
    rolled-up directory's text."""

    content_type: str
    row_sql: str
    sep: str
    head: Callable[[str], str]
    tail: Callable[[str], str]
    subdir: Callable[[str], str]
    empty_is_204: bool = False


def _json_layout(fields: list[tuple[str, str]], content_type: str = TYPES["json"]) -> Layout:
    pairs = ", ".join(f"'{key}', {expr}" for key, expr in fields)
    return Layout(content_type, f"json_object({pairs})", ",", lambda _n: "[", lambda _n: "]",
                  lambda s: json.dumps({"subdir": s}))


def _xml_layout(kind: str, tag: str, fields: list[tuple[str, str]], numbers: tuple[str, ...]) -> Layout:
    """``numbers``: the fields whose text never needs escaping (integers, the dates). One printf per row: fewer
    copies than a chain of concatenations."""
    template = "".join(f"<{key}>%s</{key}>" for key, _ in fields)
    args = ", ".join(expr if key in numbers else _xml_sql(expr) for key, expr in fields)
    return Layout(TYPES["xml"], f"printf('<{tag}>{template}</{tag}>', {args})", "",
                  lambda n: f'<?xml version="1.0" encoding="UTF-8"?>\n<{kind} name="{_xml_attr(n)}">',
                  lambda _n: f"</{kind}>",
                  lambda s: f'<subdir name="{_xml_attr(s)}"><name>{escape(s)}</name></subdir>')


PLAIN = Layout(TYPES["plain"], "name || char(10)", "", lambda _n: "", lambda _n: "", lambda s: s + "\n",
               empty_is_204=True)

_OBJECT_FIELDS = [("name", "name"), ("hash", "etag"), ("bytes", "size"), ("content_type", "content_type"),
                  ("last_modified", _iso_sql("created_at"))]
_CONTAINER_FIELDS = [("name", "name"), ("count", "object_count"), ("bytes", "bytes_used"),
                     ("last_modified", _iso_sql("put_timestamp"))]

# By the kind of listing ("container": its objects; "account": its containers) and the client's format. "" is
# the backend's own form (what the middleware reads: the rows' columns as stored).
LAYOUTS: dict[str, dict[str, Layout]] = {
    "container": {
        "json": _json_layout(_OBJECT_FIELDS),
        "xml": _xml_layout("container", "object", _OBJECT_FIELDS, ("bytes", "last_modified")),
        "plain": PLAIN,
        "": _json_layout([(c, c) for c in ("name", "created_at", "size", "content_type", "etag")]),
    },
    "account": {
        "json": _json_layout(_CONTAINER_FIELDS),
        "xml": _xml_layout("account", "container", _CONTAINER_FIELDS, ("count", "bytes", "last_modified")),
        "plain": PLAIN,
        "": _json_layout([(c, c) for c in ("name", "object_count", "bytes_used", "put_timestamp")]),
    },
}
TABLES = {"container": "object", "account": "container"}


def render(conn: sqlite3.Connection, kind: str, fmt: str, name: str, p: ListParams) -> bytes | None:
    """The listing's body in format ``fmt`` (a key of ``LAYOUTS[kind]``); None for an empty plain listing (Swift
    answers 204 to it)."""
    layout = LAYOUTS[kind][fmt]
    table = TABLES[kind]
    if p.delimiter:
        parts = [layout.subdir(r) if isinstance(r, str) else r[1]
                 for r in walk_rows(conn, table, f"name, {layout.row_sql}", p)]
        rows = layout.sep.join(parts) if parts else None
    else:
        low, low_incl, high = _bounds(p)
        sql, args = _select(table, f"{layout.row_sql} AS r", p, low, low_incl, high, p.limit)
        # The subquery's order is the order the rows are joined in (SQLite feeds an aggregate from an ordered,
        # limited subquery in that order; tests/object/test_listing_formats.py holds it to it).
        rows = conn.execute(f"SELECT group_concat(r, ?) FROM ({sql})", [layout.sep, *args]).fetchone()[0]
    if rows is None and layout.empty_is_204:
        return None
    return (layout.head(name) + (rows or "") + layout.tail(name)).encode()
