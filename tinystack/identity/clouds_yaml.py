"""Reading and writing the ``clouds.yaml`` that ``tinystack up`` leaves for python-openstackclient."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

USERS = {"admin": "admin", "demo": "demo", "alt_demo": "alt_demo"}  # cloud name -> user (= project)
# DevStack's names for the same clouds, so tools written for DevStack run unchanged.
DEVSTACK = {"devstack": "demo", "devstack-admin": "admin", "devstack-alt": "alt_demo"}
SERVICE_USER = "nova"


def known_passwords(path: Path, service_file: Path | None = None) -> dict[str, str]:
    """Passwords of the bootstrap users as clouds.yaml (and the service credentials file) have them."""
    out = {}
    if service_file is not None and service_file.exists():
        try:
            data = yaml.safe_load(service_file.read_text()) or {}
            if data.get("username") == SERVICE_USER and data.get("password"):
                out[SERVICE_USER] = data["password"]
        except yaml.YAMLError:
            pass
    if not path.exists():
        return out
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return out
    for name, cloud in (data.get("clouds") or {}).items():
        auth = cloud.get("auth") or {}
        if name in USERS and auth.get("username") == USERS[name] and auth.get("password"):
            out[USERS[name]] = auth["password"]
    return out


def write_service(path: Path, auth_url: str, password: str) -> None:
    """The credentials node agents authenticate with (docs/contracts.md, "Service credentials")."""
    data = {"auth_url": auth_url, "username": SERVICE_USER, "password": password, "project_name": "service",
            "user_domain_name": "Default", "project_domain_name": "Default"}
    _write_private(path, yaml.safe_dump(data, sort_keys=False))


def write(path: Path, auth_url: str, region: str, passwords: dict[str, str]) -> None:
    clouds: dict[str, Any] = {}
    for cloud, user in USERS.items():
        clouds[cloud] = {
            "auth": {"auth_url": auth_url, "username": user, "password": passwords[user], "project_name": user,
                     "user_domain_name": "Default", "project_domain_name": "Default"},
            "region_name": region,
            "identity_api_version": 3,
            "interface": "public",
        }
    for cloud, user in DEVSTACK.items():
        clouds[cloud] = clouds[user]
    clouds["system-admin"] = {
        "auth": {"auth_url": auth_url, "username": "admin", "password": passwords["admin"], "system_scope": "all",
                 "user_domain_name": "Default"},
        "region_name": region,
        "identity_api_version": 3,
    }
    clouds["devstack-system-admin"] = clouds["system-admin"]
    text = "# Written by tinystack up. Use: openstack --os-cloud admin ...\n" + yaml.dump(
        {"clouds": clouds}, sort_keys=False, Dumper=_NoAliases)
    _write_private(path, text)


class _NoAliases(yaml.SafeDumper):
    """Writes each cloud out in full: a file a user reads and edits should not hold YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
