"""The networking service: the one object the API handlers and other services (Compute) call. Generic
create/show/list/update/delete over the resource modules, transactions retried when a concurrent one won
a unique key (IP, MAC, segment), and change notifications for the controller after each commit."""

from __future__ import annotations

import asyncio
import builtins
import itertools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, ParamSpec, Protocol, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from tinystack.config import Config
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.core.service import ServiceBase
from tinystack.network import ipam, policies, query
from tinystack.network import settings as settings_mod
from tinystack.network.common import bad, conflict, not_found, resource_body
from tinystack.network.models import Port, Quota

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")
Key = tuple[str, str]
Changes = set[Key]


# Attributes with a default in Neutron's resource map: giving the default is not asking for anything.
ATTRIBUTE_DEFAULTS: dict[str, Any] = {"shared": False, "router:external": False, "is_default": False,
                                      "port_security_enabled": True, "binding:host_id": "", "binding:profile": {},
                                      "allowed_address_pairs": []}


class Resource(Protocol):
    """One Neutron collection's rules. Rows are ORM objects; ``render`` turns them into API dicts."""

    singular: str
    plural: str
    quota: str | None

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        """Rows the caller may see (just the one with ``ident`` when given)."""

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> builtins.list[dict[str, Any]]: ...

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str: ...

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Any, attrs: dict[str, Any],
               changes: Changes) -> None: ...

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Any, changes: Changes) -> None: ...


class NetworkService(ServiceBase):
    """Sessions, retried writes and policy come from ``ServiceBase``; a write here also collects the change
    notifications (``Changes``) the controller gets once it committed."""

    # A write that lost a unique key (IP, MAC, segment) to a concurrent one runs again on fresh state; under
    # contention that can take many rounds.
    write_attempts: ClassVar[int] = 40

    def __init__(self, config: Config, db: Database, policy: PolicyEngine,
                 services: Mapping[str, Any] | None = None) -> None:
        super().__init__(db, policy, services)
        self.config = config
        self.settings = settings_mod.load(config)
        policy.register_defaults(policies.DEFAULTS)
        self.listeners: list[Callable[[Changes], None]] = []
        # The host running DHCP and routers (the network agent that most recently sent a heartbeat).
        self.network_host: Callable[[], str | None] = lambda: None
        self.controller: Any = None  # set by the API app: tinystack.network.controller.Controller
        # Run before every API call (the API app sets the first-start bootstrap here).
        self.prepare: Callable[[], None] | None = None
        from tinystack.network import resources

        self.resources: dict[str, Resource] = resources.build()

    # --- transactions -------------------------------------------------------------------------

    def retry_on(self, exc: DBAPIError) -> bool:
        return isinstance(exc, IntegrityError) or super().retry_on(exc)

    def transact(self, fn: Callable[[Session, Changes], T]) -> T:
        """Run ``fn`` in a transaction (``retrying``: again on fresh state when a concurrent writer won a unique
        key or the lock), then tell the listeners what it changed. Blocks: call it from a worker thread, or
        ``await apply(fn)`` on the event loop."""
        changes: Changes = set()
        tries = itertools.count()

        def once(s: Session) -> T:
            changes.clear()  # what a failed attempt noted was rolled back with it
            ipam.attempt.n = next(tries)
            return fn(s, changes)

        result = self.retrying(once)
        self.notify(changes)
        return result

    async def apply(self, fn: Callable[[Session, Changes], T]) -> T:
        """``transact`` off the event loop."""
        return await asyncio.to_thread(self.transact, fn)

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """An API call's rule off the event loop, once the first-start bootstrap had its chance (``prepare``)."""
        def run() -> T:
            if self.prepare is not None:
                self.prepare()
            return fn(*args, **kwargs)

        return await asyncio.to_thread(run)

    def notify(self, changes: Changes) -> None:
        if changes:
            for listener in self.listeners:
                listener(changes)

    # --- policy -------------------------------------------------------------------------------

    def enforce(self, ctx: RequestContext, rule: str, target: Mapping[str, Any] | None = None) -> None:
        """``allowed`` or Neutron's 403 (its message names the rule)."""
        if not self.allowed(ctx, rule, target):
            raise errors.PolicyNotAuthorized(f"({rule}) is disallowed by policy", type="PolicyNotAuthorized")

    def enforce_attrs(self, ctx: RequestContext, action: str, attrs: Mapping[str, Any],
                      target: Mapping[str, Any], names: tuple[str, ...]) -> None:
        """Attribute rules, checked as Neutron does: on create only for a value other than the default
        (``--no-share`` from a member is fine), on update for every attribute the body names."""
        creating = action.startswith("create_")
        for name in names:
            if name not in attrs:
                continue
            if creating and name in ATTRIBUTE_DEFAULTS and attrs[name] == ATTRIBUTE_DEFAULTS[name]:
                continue
            self.enforce(ctx, f"{action}:{name}", target)

    def owner(self, ctx: RequestContext, attrs: dict[str, Any]) -> str:
        """The project a new resource belongs to: the caller's, or another one when an admin says so."""
        project = attrs.pop("project_id", None)
        tenant = attrs.pop("tenant_id", None)
        if project and tenant and project != tenant:
            raise bad("'project_id' and 'tenant_id' do not match")
        wanted = project or tenant or ctx.project_id or ""
        if wanted != (ctx.project_id or "") and not ctx.is_admin:
            raise errors.PolicyNotAuthorized("Specifying 'project_id' or 'tenant_id' other than the authenticated "
                                             "project in request requires admin privileges", type="HTTPForbidden")
        return str(wanted)

    def check_quota(self, s: Session, resource: str, project_id: str, model: Any, adding: int = 1) -> None:
        limit = self.quota_limit(s, project_id, resource)
        if limit < 0:
            return
        used = s.scalar(select(func.count()).select_from(model).where(model.project_id == project_id)) or 0
        if used + adding > limit:
            raise conflict(f"Quota exceeded for resources: ['{resource}'].", "OverQuota")

    def quota_limit(self, s: Session, project_id: str, resource: str) -> int:
        row = s.get(Quota, (project_id, resource))
        return row.limit if row is not None else self.settings.quotas.get(resource, -1)

    # --- generic resource operations (the API handlers call these) ----------------------------

    def resource(self, plural: str) -> Resource:
        return self.resources[plural]

    def find(self, s: Session, ctx: RequestContext, plural: str, ident: str) -> Any:
        res = self.resource(plural)
        rows = res.visible(self, s, ctx, ident)
        if not rows:
            raise not_found(res.singular, ident)
        return rows[0]

    def list(self, ctx: RequestContext, plural: str, params: Mapping[str, list[str]], base_url: str) -> dict[str, Any]:
        res = self.resource(plural)
        if plural == "security_groups":  # a project's default group exists once anyone looks, as in Neutron
            from tinystack.network.securitygroups import ensure_default_now

            ensure_default_now(self, ctx.project_id)
        with self.session() as s:
            items = res.render(self, s, ctx, res.visible(self, s, ctx))
        return query.apply(items, params, plural, base_url, self.settings.default_page_limit)

    def show(self, ctx: RequestContext, plural: str, ident: str) -> dict[str, Any]:
        res = self.resource(plural)
        with self.session() as s:
            return res.render(self, s, ctx, [self.find(s, ctx, plural, ident)])[0]

    def create(self, ctx: RequestContext, plural: str, body: Any) -> dict[str, Any]:
        """``{"<singular>": {...}}`` → one resource; ``{"<plural>": [...]}`` → a bulk create, all or nothing."""
        res = self.resource(plural)
        if isinstance(body, dict) and isinstance(body.get(plural), list):
            items = [resource_body({res.singular: item}, res.singular) for item in body[plural]]

            def bulk(s: Session, changes: Changes) -> list[str]:
                return [res.create(self, s, ctx, dict(item), changes) for item in items]

            ids = self.transact(bulk)
            with self.session() as s:
                rows = [res.visible(self, s, ctx, i)[0] for i in ids]
                return {plural: res.render(self, s, ctx, rows)}
        attrs = resource_body(body, res.singular)

        def do(s: Session, changes: Changes) -> dict[str, Any]:
            ident = res.create(self, s, ctx, dict(attrs), changes)
            s.flush()
            # Rendered as written: an agent's report committed right after (a floating IP ACTIVE) is not this
            # request's answer, as in Neutron.
            return res.render(self, s, ctx, [self.find(s, ctx, plural, ident)])[0]  # type: ignore[no-any-return]

        return {res.singular: self.transact(do)}

    def update(self, ctx: RequestContext, plural: str, ident: str, body: Any) -> dict[str, Any]:
        res = self.resource(plural)
        attrs = resource_body(body, res.singular)

        def do(s: Session, changes: Changes) -> None:
            res.update(self, s, ctx, self.find(s, ctx, plural, ident), dict(attrs), changes)

        self.transact(do)
        return {res.singular: self.show(ctx, plural, ident)}

    def delete(self, ctx: RequestContext, plural: str, ident: str) -> None:
        res = self.resource(plural)
        self.transact(lambda s, changes: res.delete(self, s, ctx, self.find(s, ctx, plural, ident), changes))

    # --- the interface Compute uses (Neutron request/response dicts) --------------------------

    def create_port(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        return self.create(ctx, "ports", body)["port"]  # type: ignore[no-any-return]

    def show_port(self, ctx: RequestContext, port_id: str) -> dict[str, Any]:
        return self.show(ctx, "ports", port_id)

    def update_port(self, ctx: RequestContext, port_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.update(ctx, "ports", port_id, body)["port"]  # type: ignore[no-any-return]

    def delete_port(self, ctx: RequestContext, port_id: str) -> None:
        self.delete(ctx, "ports", port_id)

    def list_ports(self, ctx: RequestContext, filters: dict[str, Any]) -> builtins.list[dict[str, Any]]:
        return self.list(ctx, "ports", _as_query(filters), "")["ports"]  # type: ignore[no-any-return]

    def show_network(self, ctx: RequestContext, network_id: str) -> dict[str, Any]:
        return self.show(ctx, "networks", network_id)

    def list_networks(self, ctx: RequestContext, filters: dict[str, Any]) -> builtins.list[dict[str, Any]]:
        return self.list(ctx, "networks", _as_query(filters), "")["networks"]  # type: ignore[no-any-return]

    def port_statuses(self, port_ids: builtins.list[str]) -> dict[str, str]:
        with self.session() as s:
            return {pid: status for pid, status in s.execute(
                select(Port.id, Port.status).where(Port.id.in_(list(port_ids))))}


def _as_query(filters: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in filters.items():
        values = value if isinstance(value, list | tuple | set) else [value]
        out[key] = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
    return out
