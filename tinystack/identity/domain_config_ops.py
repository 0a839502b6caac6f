"""Requests on domain-specific configuration: the policy check, the transaction and the rules of
``domain_configs.py``. The ``security_compliance`` group is read-only and cloud-wide: any caller may read the
password rules it must follow (Keystone's ``get_security_compliance_domain_config``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.identity import domain_configs as dc
from tinystack.identity.resource_common import get_domain

if TYPE_CHECKING:
    from tinystack.identity.service import IdentityService

COMPLIANCE = "security_compliance"
_COMPLIANCE_OPTIONS = ("password_regex", "password_regex_description")


class DomainConfigs:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def _target(self, domain_id: str) -> dict[str, Any]:
        return {"target.domain.id": domain_id}

    def get(self, ctx: RequestContext, domain_id: str, group: str | None = None, option: str | None = None) -> Any:
        if group == COMPLIANCE:
            return self._compliance(ctx, domain_id, option)
        self.svc.enforce(ctx, "identity:get_domain_config", self._target(domain_id))
        with self.svc.session() as s:
            return dc.get_config(s, domain_id, group, option)

    def _compliance(self, ctx: RequestContext, domain_id: str, option: str | None) -> Any:
        self.svc.enforce(ctx, "identity:get_security_compliance_domain_config", self._target(domain_id))
        if option is not None and option not in _COMPLIANCE_OPTIONS:
            raise dc.invalid(f"Reading option {option} of group {COMPLIANCE} is not allowed.")
        with self.svc.session() as s:
            get_domain(s, domain_id)
        values = {k: self.svc.config.get(COMPLIANCE, k) or None for k in _COMPLIANCE_OPTIONS}
        return values if option is None else values[option]

    async def create(self, ctx: RequestContext, domain_id: str, config: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        self.svc.enforce(ctx, "identity:create_domain_config", self._target(domain_id))
        return await self.svc.write(lambda s: dc.create_config(s, domain_id, config))

    async def update(self, ctx: RequestContext, domain_id: str, config: Mapping[str, Any], group: str | None = None,
                     option: str | None = None) -> dict[str, Any]:
        self.svc.enforce(ctx, "identity:update_domain_config", self._target(domain_id))
        if group == COMPLIANCE:
            raise dc.invalid(f"Group {COMPLIANCE} is read-only.")
        return await self.svc.write(lambda s: dc.update_config(s, domain_id, config, group, option))

    async def delete(self, ctx: RequestContext, domain_id: str, group: str | None = None,
                     option: str | None = None) -> None:
        self.svc.enforce(ctx, "identity:delete_domain_config", self._target(domain_id))
        await self.svc.write(lambda s: dc.delete_config(s, domain_id, group, option))

    def default(self, ctx: RequestContext, group: str | None = None, option: str | None = None) -> Any:
        self.svc.enforce(ctx, "identity:get_domain_config_default", {})
        if group == COMPLIANCE:
            raise errors.NotFound("The security_compliance group has no domain default: it is the cloud's own.")
        return dc.default_config(group, option)
