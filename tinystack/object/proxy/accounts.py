"""The account controller: HEAD/GET (listing) and POST (metadata). Accounts come into being with their first
container (autocreate); one not yet created reads as empty, as Swift's keystone setup does."""

from __future__ import annotations

from aiohttp import web

from tinystack.object import constraints
from tinystack.object.common import now
from tinystack.object.proxy import listing
from tinystack.object.proxy.common import Proxy, client_headers, fail, request_meta
from tinystack.object.request import authorize, swift_path


async def ensure_account(proxy: Proxy, account: str) -> None:
    """Create the account on its servers if it is not there yet."""
    info = await proxy.info.get(account)
    if info["status"] < 300:
        return
    answers = await proxy.backend.write("account", "PUT", (account,), {"X-Timestamp": now()})
    if not any(a.status < 300 for a in answers):
        fail(503)
    proxy.info.forget(account)


def _query(request: web.Request, fmt: str) -> dict[str, str]:
    return {**{k: v for k, v in request.query.items() if k in ("limit", "marker", "end_marker", "prefix",
                                                                "delimiter", "reverse")}, "format": fmt}


async def head_or_get(proxy: Proxy, request: web.Request) -> web.StreamResponse:
    path = swift_path(request)
    await authorize(request)
    if "limit" in request.query:
        try:
            if int(request.query["limit"]) > proxy.settings.account_listing_limit:
                fail(412)
        except ValueError:
            fail(412)
    fmt = listing.choose_format(request) if request.method == "GET" else ""
    answer = await proxy.backend.read("account", "GET" if request.method == "GET" else "HEAD", path.names, {},
                                      query=_query(request, fmt) if request.method == "GET" else None)
    if answer.status == 404:
        headers = {"X-Account-Container-Count": "0", "X-Account-Object-Count": "0", "X-Account-Bytes-Used": "0",
                   "X-Timestamp": now()}
        if request.method == "HEAD":
            return web.Response(status=204, headers=headers)
        return listing.render(request, "account", path.account, [], headers)
    if answer.status >= 300:
        return fail(answer.status)
    headers = client_headers(answer.headers)
    headers.pop("Content-Type", None)
    # The usage per storage policy, by name (the default one always, as Tempest looks for it).
    for policy in proxy.settings.policies:
        used = f"X-Backend-Policy-{policy.index}-Container-Count" in answer.headers
        if used or policy.default:
            for name in ("Container-Count", "Object-Count", "Bytes-Used"):
                headers[f"X-Account-Storage-Policy-{policy.name}-{name}"] = answer.headers.get(
                    f"X-Backend-Policy-{policy.index}-{name}", "0")
    if request.method == "HEAD":
        return web.Response(status=204, headers=headers)
    return listing.respond(request, "account", path.account, fmt, answer, headers)


async def post(proxy: Proxy, request: web.Request) -> web.StreamResponse:
    path = swift_path(request)
    await authorize(request)
    constraints.check_metadata(request.headers, "account")
    await ensure_account(proxy, path.account)
    answers = await proxy.backend.write("account", "POST", path.names, {"X-Timestamp": now(),
                                                                         **request_meta(request, "account")})
    proxy.info.forget(path.account)
    if sum(1 for a in answers if a.status < 300) < len(answers) // 2 + 1:
        return fail(503)
    return web.Response(status=204)
