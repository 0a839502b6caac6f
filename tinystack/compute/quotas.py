"""Quotas: per-project limits over class defaults over settings, usage counted from the tables, and the
checks server create and resize make (Nova's messages)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tinystack.compute.models import Instance, KeyPair, Quota, QuotaClass, ServerGroup
from tinystack.compute.settings import QUOTA_DEFAULTS
from tinystack.core import errors
from tinystack.core.auth import RequestContext

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

RESOURCES = tuple(QUOTA_DEFAULTS)
# Resources Nova showed before the network proxies were removed (microversion 2.36); Neutron owns them now.
LEGACY_NETWORK = {"fixed_ips": -1, "floating_ips": -1, "security_groups": -1, "security_group_rules": -1}


class Quotas:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def class_limits(self, s: Session, class_name: str = "default") -> dict[str, int]:
        limits = dict(self.svc.settings.quotas)
        for row in s.scalars(select(QuotaClass).where(QuotaClass.class_name == class_name)):
            limits[row.resource] = row.hard_limit
        return limits

    def limits(self, s: Session, project_id: str) -> dict[str, int]:
        limits = self.class_limits(s)
        for row in s.scalars(select(Quota).where(Quota.project_id == project_id)):
            limits[row.resource] = row.hard_limit
        return limits

    def limit_for(self, s: Session, project_id: str, resource: str) -> int:
        return self.limits(s, project_id)[resource]

    def usage(self, s: Session, project_id: str, user_id: str | None = None) -> dict[str, int]:
        inst = list(s.scalars(select(Instance.flavor).where(
            Instance.project_id == project_id, Instance.deleted.is_(False))).all())
        cores = sum(int(f.get("vcpus", 0)) for f in inst)
        ram = sum(int(f.get("memory_mb", 0)) for f in inst)
        keypairs = 0
        if user_id:
            keypairs = s.scalar(select(func.count()).select_from(KeyPair).where(KeyPair.user_id == user_id)) or 0
        groups = s.scalar(select(func.count()).select_from(ServerGroup).where(
            ServerGroup.project_id == project_id)) or 0
        return {"instances": len(inst), "cores": cores, "ram": ram, "key_pairs": keypairs, "server_groups": groups}

    def check_instances(self, s: Session, project_id: str, flavor: dict[str, Any], min_count: int,
                        max_count: int) -> int:
        """How many of ``max_count`` servers fit (at least ``min_count``, else 403 overLimit)."""
        limits = self.limits(s, project_id)
        used = self.usage(s, project_id)
        per = {"instances": 1, "cores": int(flavor["vcpus"]), "ram": int(flavor["memory_mb"])}
        allowed = max_count
        for res, each in per.items():
            lim = limits[res]
            if lim < 0 or each == 0:
                continue
            fits = (lim - used[res]) // each
            allowed = min(allowed, fits)
        if allowed < min_count:
            overs = [r for r, each in per.items()
                     if limits[r] >= 0 and used[r] + each * min_count > limits[r]]
            res = overs[0]
            raise errors.OverQuota(
                f"Quota exceeded for {res}: Requested {per[res] * min_count}, but already used {used[res]} of "
                f"{limits[res]} {res}", code="OverQuota")
        return allowed

    def check_delta(self, s: Session, project_id: str, cores: int, ram: int) -> None:
        """Resize: the flavor difference must fit."""
        limits = self.limits(s, project_id)
        used = self.usage(s, project_id)
        for res, delta in (("cores", cores), ("ram", ram)):
            if delta > 0 and limits[res] >= 0 and used[res] + delta > limits[res]:
                raise errors.OverQuota(f"Quota exceeded for {res}: Requested {delta}, but already used "
                                       f"{used[res]} of {limits[res]} {res}")

    # --- os-quota-sets / os-quota-class-sets ----------------------------------------------------

    def show(self, ctx: RequestContext, project_id: str, user_id: str | None = None) -> dict[str, int]:
        self.svc.enforce(ctx, "os_compute_api:os-quota-sets:show", {"project_id": project_id})
        with self.svc.session() as s:
            return self.limits(s, project_id)

    def detail(self, ctx: RequestContext, project_id: str) -> dict[str, dict[str, int]]:
        self.svc.enforce(ctx, "os_compute_api:os-quota-sets:show", {"project_id": project_id})
        with self.svc.session() as s:
            limits = self.limits(s, project_id)
            used = self.usage(s, project_id, ctx.user_id)
            used["server_group_members"] = 0
        return {r: {"limit": limits[r], "in_use": used.get(r, 0), "reserved": 0} for r in RESOURCES}

    def defaults(self, ctx: RequestContext) -> dict[str, int]:
        with self.svc.session() as s:
            return self.class_limits(s)

    def update(self, ctx: RequestContext, project_id: str, values: dict[str, Any], force: bool) -> dict[str, int]:
        self.svc.enforce(ctx, "os_compute_api:os-quota-sets:update", {"project_id": project_id})
        with self.svc.session() as s:
            used = self.usage(s, project_id)
            for res, value in values.items():
                value = int(value)
                if value < -1:
                    raise errors.BadRequest(f"Quota limit {value} for {res} must be -1 or greater.")
                if not force and value >= 0 and used.get(res, 0) > value:
                    raise errors.BadRequest(f"Quota limit {value} for {res} must be greater than or equal to "
                                            f"already used and reserved {used[res]}.")
                row = s.get(Quota, (project_id, res))
                if row is None:
                    s.add(Quota(project_id=project_id, resource=res, hard_limit=value))
                else:
                    row.hard_limit = value
            s.flush()
            return self.limits(s, project_id)

    def revert(self, ctx: RequestContext, project_id: str) -> None:
        self.svc.enforce(ctx, "os_compute_api:os-quota-sets:delete", {"project_id": project_id})
        with self.svc.session() as s:
            for row in s.scalars(select(Quota).where(Quota.project_id == project_id)):
                s.delete(row)

    def update_class(self, ctx: RequestContext, class_name: str, values: dict[str, Any]) -> dict[str, int]:
        self.svc.enforce(ctx, "os_compute_api:os-quota-class-sets:update")
        with self.svc.session() as s:
            for res, value in values.items():
                row = s.get(QuotaClass, (class_name, res))
                if row is None:
                    s.add(QuotaClass(class_name=class_name, resource=res, hard_limit=int(value)))
                else:
                    row.hard_limit = int(value)
            s.flush()
            return self.class_limits(s, class_name)

    def absolute_limits(self, ctx: RequestContext, project_id: str | None = None) -> dict[str, int]:
        pid = project_id or ctx.project_id or ""
        with self.svc.session() as s:
            lim = self.limits(s, pid)
            used = self.usage(s, pid)
        return {
            "maxServerMeta": lim["metadata_items"], "maxImageMeta": lim["metadata_items"],
            "maxPersonality": lim["injected_files"], "maxPersonalitySize": lim["injected_file_content_bytes"],
            "maxTotalKeypairs": lim["key_pairs"], "maxServerGroups": lim["server_groups"],
            "maxServerGroupMembers": lim["server_group_members"], "maxTotalCores": lim["cores"],
            "maxTotalInstances": lim["instances"], "maxTotalRAMSize": lim["ram"],
            "totalCoresUsed": used["cores"], "totalInstancesUsed": used["instances"], "totalRAMUsed": used["ram"],
            "totalServerGroupsUsed": used["server_groups"],
            "maxSecurityGroups": -1, "maxSecurityGroupRules": -1, "maxTotalFloatingIps": -1,
            "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0,
        }
