"""The Bootcamp Day 6 image steps and the sharing walkthrough, through the real ``openstack`` CLI."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.api, pytest.mark.e2e]


def test_create_list_show_save(live: LiveCloud, qcow2_file: Path, tmp_path: Path) -> None:
    created = live.cli_json("image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                            "--container-format", "bare", "day6-cirros")
    assert created["status"] == "active"
    listed = live.cli_json("image", "list")
    assert "day6-cirros" in {i["Name"] for i in listed}
    shown = live.cli_json("image", "show", "day6-cirros")
    md5sum = subprocess.run(["md5sum", str(qcow2_file)], capture_output=True, text=True, check=True).stdout.split()[0]
    assert shown["checksum"] == md5sum
    assert shown["size"] == qcow2_file.stat().st_size
    assert shown["virtual_size"] == 64 * 1024 * 1024
    assert shown["disk_format"] == "qcow2" and shown["container_format"] == "bare"
    assert shown["properties"]["os_hash_algo"] == "sha512"
    assert shown["properties"]["os_hash_value"] == hashlib.sha512(qcow2_file.read_bytes()).hexdigest()
    out = tmp_path / "saved.qcow2"
    live.cli("image", "save", "--file", str(out), "day6-cirros")
    assert out.read_bytes() == qcow2_file.read_bytes()
    live.cli("image", "delete", "day6-cirros")
    assert live.cli("image", "show", "day6-cirros", check=False).returncode != 0


def test_only_admin_publicizes_and_demo_sees_it(live: LiveCloud, qcow2_file: Path) -> None:
    refused = live.cli("image", "create", "--public", "--disk-format", "qcow2", "--container-format", "bare",
                       "demo-public", cloud="demo", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    live.cli("image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "--container-format", "bare",
             "--private", "admin-img")
    assert "admin-img" not in {i["Name"] for i in live.cli_json("image", "list", cloud="demo")}
    live.cli("image", "set", "--public", "admin-img")
    assert "admin-img" in {i["Name"] for i in live.cli_json("image", "list", cloud="demo")}
    assert live.cli_json("image", "show", "admin-img", cloud="demo")["visibility"] == "public"
    live.cli("image", "delete", "admin-img")


def test_share_with_project_after_accept(live: LiveCloud, qcow2_file: Path) -> None:
    # The admin owns the image: OSC resolves the project argument through Keystone, which a non-admin
    # may not read (see test_api for an owner without the admin role sharing through the SDK).
    demo_project = live.conn("demo").current_project_id
    image = live.cli_json("image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                          "--container-format", "bare", "--shared", "shared-img")
    member = live.cli_json("image", "add", "project", image["id"], demo_project)
    assert member["status"] == "pending"
    assert image["id"] not in {i["ID"] for i in live.cli_json("image", "list", cloud="demo")}
    live.cli("image", "set", "--accept", image["id"], cloud="demo")
    assert image["id"] in {i["ID"] for i in live.cli_json("image", "list", cloud="demo")}
    members = live.cli_json("image", "member", "list", image["id"])
    assert [(m["Member ID"], m["Status"]) for m in members] == [(demo_project, "accepted")]
    live.cli("image", "remove", "project", image["id"], demo_project)
    assert live.cli("image", "show", image["id"], cloud="demo", check=False).returncode != 0
    live.cli("image", "delete", image["id"])


def test_protected_image_cannot_be_deleted(live: LiveCloud) -> None:
    live.cli("image", "create", "--protected", "--disk-format", "raw", "--container-format", "bare", "keep-me",
             cloud="demo")
    refused = live.cli("image", "delete", "keep-me", cloud="demo", check=False)
    assert refused.returncode != 0
    assert live.cli_json("image", "show", "keep-me", cloud="demo")["protected"] is True
    live.cli("image", "set", "--unprotected", "keep-me", cloud="demo")
    live.cli("image", "delete", "keep-me", cloud="demo")
    assert live.cli("image", "show", "keep-me", cloud="demo", check=False).returncode != 0


def test_tags_properties_and_deactivate(live: LiveCloud, qcow2_file: Path) -> None:
    live.cli("image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "--container-format", "bare",
             "--tag", "bootcamp", "--property", "hw_disk_bus=virtio", "--min-disk", "1", "tagged", cloud="demo")
    shown = live.cli_json("image", "show", "tagged", cloud="demo")
    assert shown["tags"] == ["bootcamp"] and shown["min_disk"] == 1
    assert shown["properties"]["hw_disk_bus"] == "virtio"
    live.cli("image", "set", "--tag", "day6", "--property", "os_distro=cirros", "tagged", cloud="demo")
    live.cli("image", "unset", "--property", "hw_disk_bus", "tagged", cloud="demo")
    shown = live.cli_json("image", "show", "tagged", cloud="demo")
    assert sorted(shown["tags"]) == ["bootcamp", "day6"]
    assert "hw_disk_bus" not in shown["properties"] and shown["properties"]["os_distro"] == "cirros"
    assert {i["Name"] for i in live.cli_json("image", "list", "--tag", "day6", cloud="demo")} == {"tagged"}
    live.cli("image", "set", "--deactivate", "tagged", cloud="demo")
    assert live.cli_json("image", "show", "tagged", cloud="demo")["status"] == "deactivated"
    live.cli("image", "set", "--activate", "tagged", cloud="demo")
    assert live.cli_json("image", "show", "tagged", cloud="demo")["status"] == "active"
    live.cli("image", "delete", "tagged", cloud="demo")
