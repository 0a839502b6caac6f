"""Volumes for other machines: an attachment's NBD export (a random secret export name and a TLS-PSK key of its
own) when the volume node serves volumes over NBD (``[volume] nbd_host``), and the connection info that names it.

The export is desired state of the volume: the volume document lists its attachments' exports, so adding or
removing one moves the volume's generation and the volume agent serves exactly those (drivers/nbd.py).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tinystack.volume.models import Attachment, Volume

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService


class Exports:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc
        self.host = svc.agent_settings.nbd_host
        self.port = svc.agent_settings.nbd_port

    def new(self, attachment_id: str) -> dict[str, Any] | None:
        """A fresh export for a new attachment, or None when volumes are not exported (one machine)."""
        if not self.host:
            return None
        return {"name": secrets.token_urlsafe(24), "identity": f"att-{attachment_id}", "key": secrets.token_hex(32)}

    @staticmethod
    def changed(s: Session, volume_id: str) -> None:
        """An attachment with an export came or went: the volume's desired state moved. Incremented by the
        database, so two attachments of one volume changing at once both count."""
        s.flush()
        s.execute(update(Volume).where(Volume.id == volume_id).values(generation=Volume.generation + 1)
                  .execution_options(synchronize_session=False))

    def publish(self, volume_id: str) -> None:
        """After the commit: send the volume's document now (the publisher would find it anyway)."""
        if self.host:
            self.svc.controller.publish_soon("volume", volume_id)

    @staticmethod
    def of_volume(s: Session, volume_id: str) -> list[dict[str, Any]]:
        """The volume document's ``exports``: every attachment that has one, in creation order."""
        rows = s.scalars(select(Attachment).where(Attachment.volume_id == volume_id)
                         .order_by(Attachment.created_at, Attachment.id))
        # Filtered here, not in SQL: a JSON column keeps Python's None as JSON null, which IS NOT NULL matches.
        return [{"attachment_id": a.id, **a.export, "read_only": a.attach_mode == "ro"} for a in rows if a.export]

    def nbd(self, export: dict[str, Any] | None) -> dict[str, Any] | None:
        """What a compute node needs to open the export, or None."""
        if not export or not self.host:
            return None
        return {"host": self.host, "port": self.port, "export": export["name"], "tls": "psk",
                "psk_identity": export["identity"], "psk_key": export["key"]}
