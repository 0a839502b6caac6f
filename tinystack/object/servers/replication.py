"""The object server's backend verbs for the replicator, marked by ``X-Backend-Replication: true`` (the HTTP
parser takes only standard methods): ``GET /<device>`` answers ``{partition: digest}`` for every partition the
device holds (one request per peer device and pass, instead of one per partition), ``GET /<device>/<partition>``
the partition's suffix hashes (with ``?suffixes=a,b`` the files of each object in them instead), and
``PUT /<device>/<partition>/<hash>/<file>`` stores one pushed file with its metadata (``X-Object-Metadata``,
JSON) when it is newer than what the device holds and not a tombstone past ``reclaim_age``. A pushed file sends
no container update: the listing came with the original write."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tinystack.object.common import status_error, suffix_of
from tinystack.object.servers import diskfile, hashes
from tinystack.object.servers.base import Handler, NodeContext, policy_datadir

MARK = "X-Backend-Replication"
HASH = re.compile(r"^[0-9a-f]{32}$")
FILE = re.compile(r"^(\d{10}\.\d{5})\.(data|ts|meta)$")


def path_parts(request: web.Request, count: int) -> list[str]:
    parts = unquote(request.raw_path.split("?", 1)[0])[1:].split("/")
    if len(parts) != count or not all(parts):
        raise status_error(400, f"Invalid path: {request.path}")
    return parts


def partition_of(text: str) -> int:
    if not text.isdigit():
        raise status_error(400, f"Invalid partition: {text}")
    return int(text)


class ReplicationVerbs:
    def __init__(self, node: NodeContext) -> None:
        self.node = node

    async def replicate(self, request: web.Request) -> web.StreamResponse:
        age = self.node.settings.reclaim_age
        if request.raw_path.split("?", 1)[0].count("/") == 1:
            (device,) = path_parts(request, 1)
            root = self.node.device_root(device)
            digests = await asyncio.to_thread(hashes.device_digests, root, policy_datadir(self.node, request), age)
            return web.json_response({str(p): d for p, d in digests.items()})
        device, part = path_parts(request, 2)
        root = self.node.device_root(device)
        partition = partition_of(part)
        datadir = policy_datadir(self.node, request)
        wanted = request.query.get("suffixes")
        body: Any
        if wanted is None:
            body = await asyncio.to_thread(hashes.suffix_hashes, root, partition, datadir, age)
        else:
            suffixes = [s for s in wanted.split(",") if s]
            if any(not re.fullmatch(r"[0-9a-f]{3}", s) for s in suffixes):
                raise status_error(400, "Invalid suffixes")
            body = await asyncio.to_thread(hashes.suffix_listing, root, partition, suffixes, datadir, age)
        return web.json_response(body)

    async def sync(self, request: web.Request) -> web.StreamResponse:
        device, part, name_hash, filename = path_parts(request, 4)
        root = self.node.device_root(device)
        partition = partition_of(part)
        match = FILE.match(filename)
        if not HASH.match(name_hash) or match is None:
            raise status_error(400, f"Invalid object file {name_hash}/{filename}")
        ts, ext = match.group(1), match.group(2)
        try:
            meta = json.loads(request.headers.get("X-Object-Metadata", ""))
        except ValueError:
            raise status_error(400, "Invalid X-Object-Metadata") from None
        if not isinstance(meta, dict):
            raise status_error(400, "Invalid X-Object-Metadata")
        directory = root / policy_datadir(self.node, request) / str(partition) / suffix_of(name_hash) / name_hash
        state = diskfile.scan(directory)
        if not _newer(state, ts, ext):
            return web.Response(status=409, headers={"X-Backend-Timestamp": state.timestamp})
        if ext == "ts" and state.data is None and float(ts) < time.time() - self.node.settings.reclaim_age:
            # A tombstone past reclaim with nothing here to delete would only be removed again: taken as done.
            # Over an older .data it is kept, so that copy does not come back once the sender reclaims its own.
            return web.Response(status=409)
        writer = diskfile.Writer(root, directory, self.node.settings.fsync)
        try:
            async for chunk in request.content.iter_any():
                writer.write(chunk)
            if ext == "data" and (writer.md5.hexdigest() != meta.get("etag")
                                  or writer.size != int(meta.get("content-length", -1))):
                raise status_error(422, "The pushed body does not match its metadata")
            await asyncio.to_thread(writer.commit, filename, meta)
        except BaseException:
            writer.abort()
            raise
        return web.Response(status=201)


def with_verbs(node: NodeContext, handlers: dict[str, Handler]) -> dict[str, Handler]:
    """``handlers`` with GET and PUT sent to the replication verbs when the request carries the mark."""
    verbs = ReplicationVerbs(node)
    get, put = handlers["GET"], handlers["PUT"]

    async def route_get(request: web.Request) -> web.StreamResponse:
        return await (verbs.replicate if request.headers.get(MARK) == "true" else get)(request)

    async def route_put(request: web.Request) -> web.StreamResponse:
        return await (verbs.sync if request.headers.get(MARK) == "true" else put)(request)

    return {**handlers, "GET": route_get, "PUT": route_put}


def _newer(state: diskfile.State, ts: str, ext: str) -> bool:
    """A .data/.ts wins over an older .data/.ts; a .meta needs a .data older than it and no newer .meta."""
    if ext != "meta":
        return not state.timestamp or ts > state.timestamp
    if state.data is None or ts <= state.timestamp:
        return False
    return state.meta is None or ts > state.meta.name.rpartition(".")[0]


def read_file(path: Path) -> tuple[dict[str, Any], bytes]:
    """Blocking. A file's metadata and body, as SYNC takes them."""
    return diskfile.read_meta(path), path.read_bytes()
