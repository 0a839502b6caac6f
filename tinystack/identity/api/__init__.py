"""Identity API routes: Keystone v3, its version documents, and the legacy v2.0 token path."""

from __future__ import annotations

import importlib

from tinystack.core.web import Route, ServiceApp, keystone_fault
from tinystack.identity.service import IdentityService

MODULES = ("versions", "auth", "resources", "users", "assignments", "credentials", "catalog", "trusts", "limits",
           "endpoint_filter", "domain_config")


def routes(svc: IdentityService) -> list[Route]:
    out: list[Route] = []
    for name in MODULES:
        module = importlib.import_module(f"tinystack.identity.api.{name}")
        out.extend(module.routes(svc))
    return out


def app(svc: IdentityService) -> ServiceApp:
    return ServiceApp("identity", routes(svc), keystone_fault, validator=svc.validate)
