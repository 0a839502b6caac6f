"""The OpenStack and EC2 documents and the config drive tree, from a plain instance dict."""

from __future__ import annotations

import base64
import json

import pytest

from tests.metadata.instances import instance
from tinystack.metadata import configdrive, documents


def test_openstack_versions_and_listing() -> None:
    inst = instance()
    body, _ctype = documents.openstack(inst, [])
    assert body.decode().splitlines() == [*documents.OPENSTACK_VERSIONS, "latest"]
    listing = documents.openstack(inst, ["latest"])[0].decode().splitlines()
    assert set(listing) == {"meta_data.json", "password", "vendor_data.json", "network_data.json",
                            "vendor_data2.json", "user_data"}
    old = documents.openstack(inst, ["2012-08-10"])[0].decode().splitlines()
    assert "network_data.json" not in old and "vendor_data2.json" not in old


def test_meta_data_follows_the_version() -> None:
    inst = instance()
    latest = json.loads(documents.openstack(inst, ["latest", "meta_data.json"], "novalocal")[0])
    assert latest["uuid"] == inst["uuid"]
    assert latest["hostname"] == "vm1.novalocal" and latest["name"] == "vm1"
    assert latest["public_keys"] == {"k1": inst["public_keys"]["k1"]}
    assert latest["keys"] == [{"name": "k1", "type": "ssh", "data": inst["public_keys"]["k1"]}]
    assert latest["meta"] == {"role": "web"} and latest["project_id"] == "proj-a"
    assert len(base64.b64decode(latest["random_seed"])) == 512
    assert "admin_pass" not in latest  # only the config drive carries it
    folsom = json.loads(documents.openstack(inst, ["2012-08-10", "meta_data.json"])[0])
    assert "keys" not in folsom and "random_seed" not in folsom and "project_id" not in folsom


def test_user_data_and_unknown_paths() -> None:
    inst = instance()
    assert documents.openstack(inst, ["latest", "user_data"])[0] == b"#!/bin/sh\necho hello\n"
    for path in (["2099-01-01"], ["latest", "nope"], ["latest", "password"]):
        with pytest.raises(documents.UnknownPath):
            documents.openstack(inst, path)
    no_ud = instance(user_data=None)
    assert "user_data" not in documents.openstack(no_ud, ["latest"])[0].decode()
    with pytest.raises(documents.UnknownPath):
        documents.ec2(no_ud, ["latest", "user-data"])


def test_network_data() -> None:
    nd = documents.network_data(instance())
    assert nd["links"] == [{"id": "tapport-a00000", "vif_id": "port-a0000000000", "type": "bridge", "mtu": 1450,
                            "ethernet_mac_address": "fa:16:3e:00:00:01"}]
    assert nd["networks"] == [{"id": "network0", "link": "tapport-a00000", "network_id": "net-a",
                               "type": "ipv4_dhcp"}]
    assert nd["services"] == [{"type": "dns", "address": "10.0.0.2"}]
    static = instance()
    static["nics"][0]["subnets"][0]["enable_dhcp"] = False
    static["nics"][0]["subnets"][0]["host_routes"] = [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.9"}]
    net = documents.network_data(static)["networks"][0]
    assert net["type"] == "ipv4" and net["ip_address"] == "10.0.0.5" and net["netmask"] == "255.255.255.0"
    assert net["routes"] == [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"},
                             {"network": "192.168.0.0", "netmask": "255.255.0.0", "gateway": "10.0.0.9"}]


def test_ec2_tree() -> None:
    inst = instance()
    assert documents.ec2(inst, [])[0].decode().splitlines()[-2:] == ["2009-04-04", "latest"]
    assert documents.ec2(inst, ["latest"])[0] == b"meta-data/\nuser-data"
    listing = documents.ec2(inst, ["latest", "meta-data"])[0].decode().splitlines()
    for key in ("ami-id", "instance-id", "hostname", "local-ipv4", "public-ipv4", "public-keys/", "placement/",
                "block-device-mapping/", "security-groups", "reservation-id", "instance-type"):
        assert key in listing
    get = lambda *p: documents.ec2(inst, ["2009-04-04", "meta-data", *p])[0].decode()  # noqa: E731
    assert get("instance-id") == "i-1b4f0c3e"
    assert get("local-ipv4") == "10.0.0.5" and get("public-ipv4") == "172.24.4.10"
    assert get("public-keys") == "0=k1"
    assert get("public-keys", "0") == "openssh-key"
    assert get("public-keys", "0", "openssh-key") == inst["public_keys"]["k1"]
    assert get("placement", "availability-zone") == "nova"
    assert get("security-groups") == "default"
    assert documents.ec2(inst, ["latest", "user-data"])[0] == b"#!/bin/sh\necho hello\n"
    for bad in (["latest", "meta-data", "nope"], ["latest", "meta-data", "public-keys", "0", "_name"], ["3000"]):
        with pytest.raises(documents.UnknownPath):
            documents.ec2(inst, bad)


def test_password_limit() -> None:
    assert documents.check_password(b"x" * 256) == "x" * 256
    with pytest.raises(ValueError):
        documents.check_password(b"x" * 257)


def test_config_drive_tree() -> None:
    inst = instance(admin_pass="s3cret", files=[{"path": "/etc/motd", "contents": base64.b64encode(b"hi").decode()}])
    files = configdrive.files_for(inst)
    for version in ("latest", "2012-08-10"):
        md = json.loads(files[f"openstack/{version}/meta_data.json"])
        assert md["uuid"] == inst["uuid"] and md["admin_pass"] == "s3cret"
        assert md["files"] == [{"path": "/etc/motd", "content_path": "/content/0000"}]
        assert files[f"openstack/{version}/user_data"] == b"#!/bin/sh\necho hello\n"
    assert "openstack/2012-08-10/network_data.json" not in files
    assert json.loads(files["openstack/latest/network_data.json"])["links"][0]["vif_id"] == "port-a0000000000"
    assert files["openstack/content/0000"] == b"hi"
    ec2 = json.loads(files["ec2/latest/meta-data.json"])
    assert ec2["instance-id"] == "i-1b4f0c3e" and ec2["public-keys"]["0"] == {"openssh-key": inst["public_keys"]["k1"]}
    assert files["ec2/latest/user-data"] == b"#!/bin/sh\necho hello\n"
    encoded = configdrive.encoded(files)
    assert base64.b64decode(encoded["openstack/latest/user_data"]) == b"#!/bin/sh\necho hello\n"
