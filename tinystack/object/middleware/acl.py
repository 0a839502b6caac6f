"""Container ACLs (X-Container-Read / X-Container-Write) as Swift's keystone auth reads them: referrer elements
(``.r:*``, ``.r:example.com``, ``.rlistings``), ``<project>:<user>`` by id or name with ``*`` wildcards, and role
names."""

from __future__ import annotations

from tinystack.core.auth import RequestContext

READ_METHODS = ("GET", "HEAD")


def _elements(acl: str) -> list[str]:
    return [e.strip() for e in acl.split(",") if e.strip()]


def referrer_allows(acl: str, referrer: str | None, listing: bool) -> bool:
    """Whether the referrer elements let anyone (no token) read: objects with ``.r:``, listings also need
    ``.rlistings``."""
    elements = _elements(acl)
    if listing and ".rlistings" not in elements:
        return False
    host = ""
    if referrer:
        host = referrer.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    allowed = False
    for e in elements:
        if not e.startswith(".r:"):
            continue
        value = e[3:].lower()
        negative = value.startswith("-")
        value = value.lstrip("-")
        match = value in ("*", ".*") or (value.startswith(".") and host.endswith(value)) or host == value
        if match:
            allowed = not negative
    return allowed


def identity_allows(acl: str, ident: RequestContext) -> bool:
    roles = {r.lower() for r in ident.roles}
    for e in _elements(acl):
        if e.startswith("."):
            continue
        if ":" in e:
            project, _, user = e.partition(":")
            if project in ("*", ident.project_id, ident.project_name) and user in ("*", ident.user_id, ident.user_name):
                return True
        elif e.lower() in roles:
            return True
    return False
