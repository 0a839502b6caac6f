"""What a validated token says about the caller, as every service sees it."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AccessRule:
    """One request an application credential's token may make: the service type, the method, and the path as
    the service sees it, where ``*`` or ``{name}`` stand for one segment and ``**`` for any number."""

    service: str
    method: str
    path: str


@dataclass(frozen=True)
class RequestContext:
    """The caller: who, in which scope, with which (effective) roles. Built once per token and cached."""

    user_id: str
    user_name: str = ""
    user_domain_id: str = ""
    user_domain_name: str = ""
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    project_domain_name: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None
    system_scope: str | None = None
    roles: tuple[str, ...] = ()
    role_ids: tuple[str, ...] = ()
    token: str = ""
    audit_ids: tuple[str, ...] = ()
    expires_at: float = 0.0
    issued_at: float = 0.0
    methods: tuple[str, ...] = ()
    application_credential_id: str | None = None
    # The application credential's access rules: None lets the token make any request its roles allow.
    access_rules: tuple[AccessRule, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    # The request this context acts in, when it was made for one (``elevated``); a context validated from a
    # token is cached across requests, so it carries none and the log's context variable names the request.
    request_id: str | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        """Admin in the cloud-wide sense: the admin role with system scope, or on any project scope.

        Like DevStack's legacy policies, the admin role on a project is treated as cloud admin.
        """
        return "admin" in self.roles

    @property
    def is_system(self) -> bool:
        return self.system_scope == "all"

    def creds(self) -> dict[str, Any]:
        """The credentials dictionary policy rules are checked against (oslo.policy's names)."""
        return {
            "user_id": self.user_id,
            "user_domain_id": self.user_domain_id,
            "project_id": self.project_id,
            "project_domain_id": self.project_domain_id,
            "domain_id": self.domain_id,
            "system_scope": self.system_scope,
            "roles": list(self.roles),
            "is_admin": self.is_admin,
            "is_admin_project": self.project_id is not None,
        }


TokenValidator = Callable[[str], RequestContext]
"""Validates a token and returns its context; raises ``errors.Unauthorized`` (or NotFound) when invalid."""


# The catalog types an access rule may name for each API (the block storage API answers to all of its names).
_SERVICE_TYPES = {"volume": ("block-storage", "volumev3", "volume"), "object": ("object-store",)}


@functools.lru_cache(maxsize=1024)
def _path_regex(pattern: str) -> re.Pattern[str]:
    out = []
    for part in re.split(r"(\*\*|\*|\{[^}]*\})", pattern):
        if part == "**":
            out.append(".*")
        elif part == "*" or (part.startswith("{") and part.endswith("}")):
            out.append("[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "$")


def access_permitted(rules: tuple[AccessRule, ...], api: str, method: str, path: str) -> bool:
    """Whether one of ``rules`` lets a request of ``method`` on ``path`` to the API named ``api`` through."""
    types = _SERVICE_TYPES.get(api, (api,))
    return any(r.service in types and r.method == method and _path_regex(r.path).match(path) is not None
               for r in rules)
