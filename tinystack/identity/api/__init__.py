"""Identity API routes: Keystone v3, its version documents, and the legacy v2.0 token path."""

from __future__ import annotations

import importlib

from tinystack.core.web import Route, ServiceApp, keystone_fault
from tinystack.identity.service import IdentityService

MODULES = ("versions", "auth", "resources", "assignments", "credentials", "catalog")


def routes(svc: IdentityService) -> list[Route]:
    out: list[Route] = []
    for name in MODULES:
        qualified = f"tinystack.identity.api.{name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name != qualified:  # a real import error inside the module
                raise
            continue  # TODO(lead): drop once every module has landed
        out.extend(module.routes(svc))
    return out


def app(svc: IdentityService) -> ServiceApp:
    return ServiceApp("identity", routes(svc), keystone_fault, validator=svc.validate)
