"""Cloud discovery: catalog helpers, and a cloud that does not answer becomes warnings, not a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinystack.conformance import cloud
from tinystack.conformance.errors import HarnessError

pytestmark = pytest.mark.api

CATALOG = [
    {"type": "identity", "endpoints": [{"interface": "public", "region": "RegionOne", "url": "http://h:5000/v3"}]},
    {
        "type": "image",
        "endpoints": [
            {"interface": "admin", "region": "RegionOne", "url": "http://admin:9292"},
            {"interface": "public", "region": "RegionTwo", "url": "http://two:9292"},
            {"interface": "public", "region": "RegionOne", "url": "http://one:9292"},
        ],
    },
    {"type": "compute", "endpoints": [{"interface": "internal", "region": "RegionOne", "url": "http://int:8774"}]},
]


def test_public_endpoints_prefer_the_region() -> None:
    assert cloud.public_endpoints(CATALOG, "RegionOne") == {"identity": "http://h:5000/v3", "image": "http://one:9292"}
    assert cloud.public_endpoints(CATALOG, "")["image"] == "http://two:9292"
    assert cloud.catalog_region(CATALOG, "identity") == "RegionOne"


def test_identity_v3_url() -> None:
    assert cloud.identity_v3_url("http://h:5000") == "http://h:5000/v3"
    assert cloud.identity_v3_url("http://h:5000/v3/") == "http://h:5000/v3"


def test_unreachable_cloud_gives_facts_and_warnings(tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n"
        "  admin:\n"
        "    auth: {auth_url: 'http://127.0.0.1:9/v3', username: admin, password: pw, project_name: admin,\n"
        "           user_domain_name: Default, project_domain_name: Default}\n"
        "    region_name: RegionOne\n"
        "  demo:\n"
        "    auth: {auth_url: 'http://127.0.0.1:9/v3', username: demo, password: pw2, project_name: demo}\n"
    )
    facts = cloud.discover(clouds)
    assert facts.auth_url == "http://127.0.0.1:9/v3"
    assert facts.admin == cloud.Credentials("admin", "pw", "admin")
    assert facts.demo is not None and facts.demo.username == "demo"
    assert facts.services == {}
    assert facts.warnings and facts.warnings[0].startswith("reading the service catalog")


def test_missing_or_useless_clouds_yaml(tmp_path: Path) -> None:
    with pytest.raises(HarnessError):
        cloud.discover(tmp_path / "nope.yaml")
    other = tmp_path / "clouds.yaml"
    other.write_text("clouds:\n  mine:\n    auth: {auth_url: 'http://127.0.0.1:9/v3'}\n")
    with pytest.raises(HarnessError):
        cloud.discover(other)


def test_image_ref_is_a_bootable_image_never_a_kernel_or_ramdisk() -> None:
    from types import SimpleNamespace

    def image(name: str, fmt: str, size: int) -> SimpleNamespace:
        return SimpleNamespace(id=name, name=name, status="active", visibility="public", disk_format=fmt,
                               size=size, properties={})

    # The ramdisk is the smallest CirrOS-named image; picking it gave Tempest servers that never booted.
    name = "cirros-0.6.3-x86_64-uec"
    images = [image(name, "ami", 8 << 20), image(f"{name}-ramdisk", "ari", 3 << 20),
              image(f"{name}-kernel", "aki", 5 << 20)]
    facts = cloud.CloudFacts(auth_url="http://h:5000/v3")
    cloud._pick_images(SimpleNamespace(image=SimpleNamespace(images=lambda: images)), facts)
    assert (facts.image_id, facts.image_alt_id, facts.image_ssh_user) == (name, name, "cirros")


def test_a_single_public_image_gets_a_copy_for_image_ref_alt(tmp_path: Path) -> None:
    from tests.livecloud import LiveCloud

    live = LiveCloud(tmp_path / "state")
    try:
        admin = live.conn("admin")
        source = admin.image.create_image(name="cirros-solo", data=b"\x01" * 4096, disk_format="raw",
                                          container_format="bare", visibility="public",
                                          kernel_id="0b2f4e9c-5f7a-4c2e-9d1b-3a6e8f0c1d2e")
        source = admin.image.get_image(source.id)
        facts = cloud.discover(live.clouds_yaml)
        assert facts.image_id == source.id and facts.image_alt_id not in (None, source.id)
        copy = admin.image.get_image(facts.image_alt_id)
        assert copy.name == "cirros-solo-alt" and copy.checksum == source.checksum and copy.visibility == "public"
        assert copy.kernel_id == "0b2f4e9c-5f7a-4c2e-9d1b-3a6e8f0c1d2e"
        assert len(facts.created) == 1 and copy.id in facts.created[0]
        again = cloud.discover(live.clouds_yaml)  # a later run reuses the copy and makes nothing
        assert (again.image_id, again.image_alt_id, again.created) == (source.id, copy.id, [])
    finally:
        live.stop()
