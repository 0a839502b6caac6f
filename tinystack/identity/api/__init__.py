"""Identity API routes: Keystone v3, its version documents, and the legacy v2.0 token path."""

from __future__ import annotations

from tinystack.core.web import Route
from tinystack.identity.service import IdentityService


def routes(svc: IdentityService) -> list[Route]:
    from tinystack.identity.api import auth, versions

    out: list[Route] = []
    for module in (versions, auth):
        out.extend(module.routes(svc))
    for name in ("resources", "assignments", "credentials", "catalog"):
        try:
            module = __import__(f"tinystack.identity.api.{name}", fromlist=["routes"])
        except ModuleNotFoundError:
            continue
        out.extend(module.routes(svc))
    return out


def app(svc: IdentityService) -> "ServiceApp":
    from tinystack.core.web import ServiceApp, keystone_fault

    return ServiceApp("identity", routes(svc), keystone_fault, validator=svc.validate)
