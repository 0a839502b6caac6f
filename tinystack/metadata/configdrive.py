"""The config drive's content (ISO 9660, label ``config-2``; the compute agent makes the ISO): the OpenStack
tree for every metadata version, the EC2 JSON documents, user data and injected files."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from tinystack.metadata import documents

LABEL = "config-2"
EC2_DRIVE_VERSIONS = ("2009-04-04", "latest")


def files_for(instance: Mapping[str, Any], dhcp_domain: str = "") -> dict[str, bytes]:
    """Path → bytes of every file on the drive, for ``instance`` (the dict documents.py describes)."""
    out: dict[str, bytes] = {}
    ud = documents.user_data(instance)
    for version in (*documents.OPENSTACK_VERSIONS, "latest"):
        base = f"openstack/{version}"
        md = documents.meta_data(instance, version, dhcp_domain=dhcp_domain, config_drive=True)
        out[f"{base}/meta_data.json"] = json.dumps(md).encode()
        out[f"{base}/vendor_data.json"] = json.dumps(documents.vendor_data(instance)).encode()
        if documents._at_least(version, documents.LIBERTY):
            out[f"{base}/network_data.json"] = json.dumps(documents.network_data(instance)).encode()
        if documents._at_least(version, documents.NEWTON_TWO):
            out[f"{base}/vendor_data2.json"] = b"{}"
        if ud is not None:
            out[f"{base}/user_data"] = ud
    for i, f in enumerate(instance.get("files") or []):
        out[f"openstack/content/{i:04d}"] = base64.b64decode(f.get("contents") or "")
    ec2_md = documents.ec2_meta_data(instance, dhcp_domain)
    for version in EC2_DRIVE_VERSIONS:
        out[f"ec2/{version}/meta-data.json"] = json.dumps(_plain(ec2_md)).encode()
        if ud is not None:
            out[f"ec2/{version}/user-data"] = ud
    return out


def encoded(files: Mapping[str, bytes]) -> dict[str, str]:
    """As the instance spec carries it: ``{"config_drive": {"files": {path: base64}}}``."""
    return {path: base64.b64encode(data).decode() for path, data in files.items()}


def _plain(node: Any) -> Any:
    """The EC2 tree as Nova's ``meta-data.json``: listing names (``_name``) dropped."""
    if isinstance(node, Mapping):
        return {k: _plain(v) for k, v in node.items() if k != "_name"}
    return node
