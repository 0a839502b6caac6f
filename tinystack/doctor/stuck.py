"""Resources stuck in a transitional state: servers building or with a task under way, volumes, backups and attachments
on their way somewhere, ports in BUILD, each unchanged for longer than ``[doctor] stuck_after`` seconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from tinystack.core.db import Database
from tinystack.doctor.findings import Finding, ago, ok, warning

CHECK = "stuck"

VOLUME_TRANSITIONS = ("creating", "deleting", "attaching", "detaching", "extending", "downloading", "uploading",
                      "retyping", "backing-up", "restoring-backup", "reserved")


@dataclass(frozen=True)
class Stuck:
    kind: str  # server, volume, volume backup, volume attachment, port
    id: str
    state: str
    host: str | None
    since: datetime  # naive UTC, as the tables keep it


def find(db: Database, now: datetime, after: float) -> list[Stuck]:
    from tinystack.compute.models import Instance
    from tinystack.network.models import Port
    from tinystack.volume.models import Attachment, Backup, Volume

    cutoff = now - timedelta(seconds=after)
    out: list[Stuck] = []
    with db.session() as s:
        for inst in s.scalars(select(Instance).where(
                Instance.deleted.is_(False), Instance.updated_at < cutoff,
                or_(Instance.vm_state == "building", Instance.task_state.is_not(None)))):
            state = inst.vm_state + (f"/{inst.task_state}" if inst.task_state else "")
            out.append(Stuck("server", inst.id, state, inst.host, inst.updated_at))
        for vol in s.scalars(select(Volume).where(Volume.status.in_(VOLUME_TRANSITIONS))):
            since = vol.updated_at or vol.created_at
            if since < cutoff:
                out.append(Stuck("volume", vol.id, vol.status, vol.host, since))
        for backup in s.scalars(select(Backup).where(Backup.status.in_(("creating", "restoring", "deleting")))):
            since = backup.updated_at or backup.created_at
            if since < cutoff:
                out.append(Stuck("volume backup", backup.id, backup.status, backup.host, since))
        for att in s.scalars(select(Attachment).where(Attachment.attach_status.in_(("attaching", "detaching")))):
            if att.attach_time is not None and att.attach_time < cutoff:
                out.append(Stuck("volume attachment", att.id, att.attach_status, att.attached_host, att.attach_time))
        for port in s.scalars(select(Port).where(Port.status == "BUILD", Port.updated_at < cutoff)):
            out.append(Stuck("port", port.id, port.status, None, port.updated_at))
    return out


TODO = {
    "server": "look at the compute agent on {host} (is it up? its log names the server); `openstack server show {id}` "
              "shows the fault; when the agent cannot finish, `openstack server set --state error {id}` and delete or "
              "rebuild it",
    "volume": "look at the volume agent on {host} and its log; `cinder reset-state --state available {id}` (or error) "
              "once nothing works on it any more",
    "volume backup": "look at the backup agent on {host} and its log (it writes object storage as the service user); "
                     "`openstack volume backup set --state error {id}` once nothing works on it any more",
    "volume attachment": "look at the compute agent on {host}; `cinder reset-state --attach-status detached` the volume "
                         "if the server no longer has it",
    "port": "look at the network agent of the port's host (`openstack port show {id}`, binding:host_id) and its log",
}


def findings(stuck: list[Stuck], now: datetime, after: float) -> list[Finding]:
    out = [warning(CHECK, f"{s.kind} {s.id} has been {s.state} since {s.since:%Y-%m-%d %H:%M:%S} UTC "
                   f"({ago((now - s.since).total_seconds())})" + (f" on {s.host}" if s.host else ""),
                   TODO[s.kind].format(host=s.host or "its host", id=s.id), s.id) for s in stuck]
    return out or [ok(CHECK, f"no resource in a transitional state for more than {after:g} s")]
