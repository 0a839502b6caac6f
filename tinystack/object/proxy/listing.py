"""Account and container listings in the format a client asks for (``?format=`` or Accept): JSON, XML or plain.

The proxy asks the storage server for that format and passes its body on unchanged (``respond``); it renders
rows itself only for an account not yet created and for a storage node of an older release, which answers with
its rows as stored."""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from tinystack.object.common import status_error
from tinystack.object.proxy.backend import Answer

TYPES = {"json": "application/json", "xml": "application/xml", "plain": "text/plain"}
# The storage server's answer header naming the format it wrote (servers/listing.py; spelt out again here, since
# the proxy reaches the storage servers over HTTP only).
FORMAT_HEADER = "X-Backend-Listing-Format"


def choose_format(request: web.Request) -> str:
    fmt = request.query.get("format", "").lower()
    if fmt:
        if fmt not in TYPES:
            return "plain"
        return fmt
    accept = request.headers.get("Accept", "")
    best, best_q = "plain", 0.0
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        kind = {"application/json": "json", "application/xml": "xml", "text/xml": "xml", "text/plain": "plain",
                "*/*": "plain", "text/*": "plain", "application/*": "json"}.get(media.lower())
        if kind is not None and q > best_q:
            best, best_q = kind, q
    if accept and best_q == 0.0 and "*/*" not in accept:
        raise status_error(406, "Not Acceptable")
    return best


def iso(timestamp: str) -> str:
    """``1700000000.12345`` -> ``2023-11-14T22:13:20.123450``. The date is formatted once per second (a listing's
    objects were mostly written in a few seconds), the fraction taken from the text as it is."""
    seconds, _, fraction = timestamp.partition(".")
    if not seconds.isdigit() or not (fraction.isdigit() or not fraction):
        t = datetime.datetime.fromtimestamp(float(timestamp), datetime.UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{_iso_seconds(int(seconds))}.{(fraction + '000000')[:6]}"


@functools.lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def container_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r if "subdir" in r else {"name": r["name"], "hash": r["etag"], "bytes": r["size"],
                                     "content_type": r["content_type"], "last_modified": iso(r["created_at"])}
            for r in rows]


def account_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r if "subdir" in r else {"name": r["name"], "count": r["object_count"], "bytes": r["bytes_used"],
                                     "last_modified": iso(r["put_timestamp"])}
            for r in rows]


def render(request: web.Request, kind: str, name: str, rows: list[dict[str, Any]],
           headers: dict[str, str]) -> web.Response:
    """``kind``: "container" (rows are objects) or "account" (rows are containers)."""
    fmt = choose_format(request)
    items = container_rows(rows) if kind == "container" else account_rows(rows)
    if fmt == "json":
        body = json.dumps(items).encode()
    elif fmt == "xml":
        tag = "object" if kind == "container" else "container"
        out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{kind} name="{escape(name, {chr(34): "&quot;"})}">']
        for item in items:
            if "subdir" in item:
                out.append(f'<subdir name="{escape(item["subdir"], {chr(34): "&quot;"})}">'
                           f'<name>{escape(item["subdir"])}</name></subdir>')
                continue
            fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in item.items())
            out.append(f"<{tag}>{fields}</{tag}>")
        out.append(f"</{kind}>")
        body = "".join(out).encode()
    else:
        if not items:
            return web.Response(status=204, headers={**headers, "Content-Type": "text/plain; charset=utf-8"})
        body = "".join((i.get("subdir") or i["name"]) + "\n" for i in items).encode()
    return web.Response(status=200, body=body, headers={**headers, "Content-Type": f"{TYPES[fmt]}; charset=utf-8"})


def respond(request: web.Request, kind: str, name: str, fmt: str, answer: Answer,
            headers: dict[str, str]) -> web.Response:
    """The client's answer to a listing GET for which the storage server was asked for ``fmt``."""
    if answer.headers.get(FORMAT_HEADER) != fmt:
        return render(request, kind, name, json.loads(answer.body), headers)
    headers["Content-Type"] = f"{TYPES[fmt]}; charset=utf-8"
    if answer.status == 204:
        return web.Response(status=204, headers=headers)
    return web.Response(status=200, body=answer.body, headers=headers)
