"""Cinder's quotas: per-project limits (defaults from ``[volume] quota_*``), usage counted from the tables at
the moment of a claim, inside the same transaction that writes the new row."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.volume.models import Group, Quota, Snapshot, Volume

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

# Limits API names (GET /limits "absolute").
LIMIT_NAMES = {"volumes": "maxTotalVolumes", "snapshots": "maxTotalSnapshots",
               "gigabytes": "maxTotalVolumeGigabytes", "backups": "maxTotalBackups",
               "backup_gigabytes": "maxTotalBackupGigabytes"}


def over_limit(message: str) -> errors.TinyError:
    """Cinder refuses an exceeded quota with 413 ``overLimit``."""
    err = errors.OverQuota(message)
    err.status = 413
    return err


class Quotas:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def limits(self, s: Session, project_id: str) -> dict[str, int]:
        out = dict(self.svc.settings.quotas)
        for row in s.scalars(select(Quota).where(Quota.project_id == project_id)):
            out[row.resource] = row.hard_limit
        return out

    def usage(self, s: Session, project_id: str) -> dict[str, int]:
        nvol, vgb = s.execute(select(func.count(Volume.id), func.coalesce(func.sum(Volume.size), 0))
                              .where(Volume.project_id == project_id)).one()
        nsnap, sgb = s.execute(select(func.count(Snapshot.id), func.coalesce(func.sum(Snapshot.size), 0))
                               .where(Snapshot.project_id == project_id)).one()
        ngroups = s.scalar(select(func.count(Group.id)).where(Group.project_id == project_id)) or 0
        nbackup, bgb = self.svc.backups.usage(s, project_id)
        return {"volumes": int(nvol), "snapshots": int(nsnap), "gigabytes": int(vgb) + int(sgb), "backups": nbackup,
                "backup_gigabytes": bgb, "groups": int(ngroups), "per_volume_gigabytes": 0}

    def check(self, s: Session, project_id: str, *, volume_gb: int | None = None, **deltas: int) -> None:
        """Refuse (413) when adding ``deltas`` would take a resource over its limit. ``volume_gb``: the one
        volume's size for the per-volume limit, when ``gigabytes`` also counts its snapshots."""
        limits = self.limits(s, project_id)
        per_volume = limits.get("per_volume_gigabytes", -1)
        size = volume_gb if volume_gb is not None else deltas.get("gigabytes")
        if size is not None and per_volume >= 0 and size > per_volume:
            raise over_limit(f"VolumeSizeExceedsLimit: Requested volume size {size}G is larger than "
                             f"maximum allowed limit {per_volume}G.")
        used = self.usage(s, project_id)
        for resource, delta in deltas.items():
            limit = limits.get(resource, -1)
            if delta > 0 and limit >= 0 and used[resource] + delta > limit:
                if resource == "gigabytes":
                    raise over_limit(f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds "
                                     f"allowed gigabytes quota. Requested {delta}G, quota is {limit}G and "
                                     f"{used[resource]}G has been consumed.")
                if resource == "backup_gigabytes":
                    raise over_limit(f"VolumeBackupSizeExceedsAvailableQuota: Requested backup size {delta}G, quota "
                                     f"is {limit}G and {used[resource]}G has been consumed.")
                name = {"volumes": "VolumeLimitExceeded", "snapshots": "SnapshotLimitExceeded",
                        "backups": "BackupLimitExceeded", "groups": "GroupLimitExceeded"}.get(resource, resource)
                raise over_limit(f"{name}: Maximum number of {resource} allowed ({limit}) exceeded for quota "
                                 f"'{resource}'.")

    # --- the os-quota-sets and limits APIs -----------------------------------------------------------

    def show(self, ctx: RequestContext, project_id: str, usage: bool) -> dict[str, Any]:
        if project_id != ctx.project_id:
            self.svc.enforce(ctx, "volume_extension:quotas:update")
        self.svc.enforce(ctx, "volume_extension:quotas:show", {"project_id": project_id})
        with self.svc.session() as s:
            limits = self.limits(s, project_id)
            used = self.usage(s, project_id)
        if not usage:
            return {"id": project_id, **limits}
        return {"id": project_id, **{k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0, "allocated": 0}
                                     for k, v in limits.items()}}

    def defaults(self, project_id: str) -> dict[str, Any]:
        return {"id": project_id, **self.svc.settings.quotas}

    def update(self, ctx: RequestContext, project_id: str, values: dict[str, Any]) -> dict[str, Any]:
        self.svc.enforce(ctx, "volume_extension:quotas:update")
        unknown = set(values) - set(self.svc.settings.quotas)
        if unknown:
            raise errors.BadRequest(f"Bad key(s) in quota set: {', '.join(sorted(unknown))}")
        with self.svc.session() as s:
            used = self.usage(s, project_id)
            for resource, raw in values.items():
                limit = int(raw)
                if 0 <= limit < used.get(resource, 0) and resource != "per_volume_gigabytes":
                    raise errors.BadRequest(f"Quota limit {limit} for {resource} must be equal or greater than "
                                            f"existing resources ({used[resource]}).")
                row = s.get(Quota, (project_id, resource))
                if row is None:
                    s.add(Quota(project_id=project_id, resource=resource, hard_limit=limit))
                else:
                    row.hard_limit = limit
        with self.svc.session() as s:
            return self.limits(s, project_id)

    def delete(self, ctx: RequestContext, project_id: str) -> None:
        self.svc.enforce(ctx, "volume_extension:quotas:delete")
        with self.svc.session() as s:
            for row in s.scalars(select(Quota).where(Quota.project_id == project_id)):
                s.delete(row)

    def absolute(self, ctx: RequestContext) -> dict[str, int]:
        project_id = ctx.project_id or ""
        with self.svc.session() as s:
            limits = self.limits(s, project_id)
            used = self.usage(s, project_id)
        out = {name: limits[k] for k, name in LIMIT_NAMES.items()}
        out.update({"totalVolumesUsed": used["volumes"], "totalGigabytesUsed": used["gigabytes"],
                    "totalSnapshotsUsed": used["snapshots"], "totalBackupsUsed": used["backups"],
                    "totalBackupGigabytesUsed": used["backup_gigabytes"]})
        return out
