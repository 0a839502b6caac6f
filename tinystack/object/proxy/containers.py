"""The container controller: PUT (creating the account first if needed), HEAD/GET with listings, POST, DELETE."""

from __future__ import annotations

from aiohttp import web

from tinystack.object import constraints, policies
from tinystack.object.common import now, status_error
from tinystack.object.proxy import listing
from tinystack.object.proxy.accounts import ensure_account
from tinystack.object.proxy.backend import quorum, write_status
from tinystack.object.proxy.common import Proxy, client_headers, fail, request_meta
from tinystack.object.request import authorize, swift_path

LIST_KEYS = ("limit", "marker", "end_marker", "prefix", "delimiter", "reverse", "path")


async def put(proxy: Proxy, request: web.Request) -> web.StreamResponse:
    path = swift_path(request)
    assert path.container is not None
    await authorize(request)
    constraints.check_container_name(path.container)
    constraints.check_metadata(request.headers, "container")
    headers = {"X-Timestamp": now(), **request_meta(request, "container")}
    name = request.headers.get("X-Storage-Policy")
    if name is not None:
        policy = policies.by_name(proxy.settings.policies, name)
        if policy is None:
            raise status_error(400, f"Invalid X-Storage-Policy {name!r}")
        headers[policies.INDEX_HEADER] = str(policy.index)
    else:
        # Only a new container takes the default; an existing one keeps its own.
        headers[policies.DEFAULT_HEADER] = str(proxy.settings.policies[0].index)
    await ensure_account(proxy, path.account)
    answers = await proxy.backend.write("container", "PUT", path.names, headers)
    proxy.info.forget(path.account, path.container)
    proxy.info.forget(path.account)
    status = write_status(answers, len(answers))
    if status == 409:
        raise status_error(409, "Container already exists with a different storage policy.")
    if status >= 300:
        return fail(status)
    return web.Response(status=201 if any(a.status == 201 for a in answers) else 202)


async def head_or_get(proxy: Proxy, request: web.Request) -> web.StreamResponse:
    path = swift_path(request)
    assert path.container is not None
    await authorize(request, lambda: proxy.info.get(path.account, path.container or ""))
    if len(path.container.encode()) > constraints.MAX_CONTAINER_NAME_LENGTH:
        return fail(404)
    query = None
    fmt = ""
    if request.method == "GET":
        fmt = listing.choose_format(request)  # a 406 before anything is asked of the servers, as Swift's
        query = {k: v for k, v in request.query.items() if k in LIST_KEYS}
        if "path" in query:
            p = query.pop("path").rstrip("/")
            query.update(prefix=f"{p}/" if p else "", delimiter="/")
        query["format"] = fmt
    answer = await proxy.backend.read("container", request.method, path.names, {}, query=query)
    if answer.status >= 300:
        return fail(answer.status)
    headers = client_headers(answer.headers)
    headers.pop("Content-Type", None)
    index = int(answer.headers.get(policies.INDEX_HEADER, 0) or 0)
    known = policies.by_index(proxy.settings.policies, index)
    headers["X-Storage-Policy"] = known.name if known is not None else str(index)
    headers["Accept-Ranges"] = "bytes"
    if request.method == "HEAD":
        return web.Response(status=204, headers=headers)
    return listing.respond(request, "container", path.container, fmt, answer, headers)


async def post(proxy: Proxy, request: web.Request) -> web.StreamResponse:
    path = swift_path(request)
    assert path.container is not None
    await authorize(request)
    constraints.check_metadata(request.headers, "container")
    info = await proxy.info.get(path.account, path.container)
    if info["status"] == 404:
        return fail(404)
    answers = await proxy.backend.write("container", "POST", path.names, {"X-Timestamp": now(),
                                                                           **request_meta(request, "container")})
    proxy.info.forget(path.account, path.container)
    status = write_status(answers, len(answers))
    return web.Response(status=204) if status < 300 else fail(status)


async def delete(proxy: Proxy, request: web.Request) -> web.StreamResponse:
    path = swift_path(request)
    assert path.container is not None
    await authorize(request)
    answers = await proxy.backend.write("container", "DELETE", path.names, {"X-Timestamp": now()})
    proxy.info.forget(path.account, path.container)
    proxy.info.forget(path.account)
    statuses = [a.status for a in answers]
    if sum(1 for s in statuses if s < 300) >= quorum(len(statuses)):
        return web.Response(status=204)
    if 409 in statuses:
        return fail(409)
    if sum(1 for s in statuses if s == 404) >= quorum(len(statuses)) or (
            all(s in (404, 204) for s in statuses) and 204 not in statuses):
        return fail(404)
    return web.Response(status=204) if any(s < 300 for s in statuses) else fail(write_status(answers, len(answers)))
