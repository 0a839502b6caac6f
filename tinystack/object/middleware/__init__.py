"""The proxy's middleware pipeline, outermost first (docs/object-storage.md). Each module is an aiohttp
middleware factory ``make(proxy, ...)``; the proxy builds them in ``ORDER``. A request walks down the list and
its response back up; the controllers (proxy/) sit below the last one.

1. ``healthcheck``  GET /healthcheck, before anything else.
2. ``pathinfo``     parses ``/v1/<account>/<container>/<object>`` once (``request[PATH]``); refuses bad UTF-8.
3. ``cors``         answers preflight OPTIONS from the container's CORS metadata; decorates real responses.
3b. ``tempurl``     a request signed with a Temp-URL-Key acts without a token (installs ``request[AUTH]``).
3c. ``formpost``    an HTML form upload signed with a Temp-URL-Key stores its files without a token.
4. ``keystone``     validates the token, installs ``request[AUTH]`` (owner, operator roles, ResellerAdmin);
                    the container ACLs (``acl``) are consulted there through the container's info.
4b. ``bulk``        ``?bulk-delete`` (POST of names) and ``?extract-archive=tar|tar.gz|tar.bz2`` (PUT of an archive):
                    each delete or upload is a sub-request through the rest, so quotas and ACLs apply to it.
5. ``quotas``       account and container quotas on writes (after auth: it needs to know who is writing).
6. ``versioned``    X-Versions-Location / X-History-Location: overwritten objects kept in another container.
7. ``slo``          static large objects (``?multipart-manifest=put|get|delete``, segments read joined).
8. ``dlo``          a GET/HEAD of a dynamic large object's manifest reads its segments joined.
"""

from __future__ import annotations

ORDER = (
    "healthcheck", "pathinfo", "cors", "tempurl", "formpost", "keystone", "bulk", "quotas", "versioned", "slo",
    "dlo")
