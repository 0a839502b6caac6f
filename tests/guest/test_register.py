"""At first start the default image is registered public: kernel, ramdisk and disk linked by kernel_id and
ramdisk_id, visible to every project, and registering again changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.guest import harness
from tests.livecloud import LiveCloud
from tinystack.guest import build, register, settings

pytestmark = [pytest.mark.guest, pytest.mark.slow, pytest.mark.skipif(not harness.tools_present(), reason="needs apt-get")]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    asyncio.run(build.build(harness.SHARED_CACHE))  # so that registration finds a cached build
    live = LiveCloud(Path(tmp_path_factory.mktemp("guestcloud")), guest__cache_dir=str(harness.SHARED_CACHE),
                     guest__auto_build="true")
    try:
        yield live
    finally:
        live.stop()


def test_default_images_are_registered_once(cloud: LiveCloud) -> None:
    cloud.call(register.ensure_default_image(cloud.cloud.runtime), timeout=120)
    cloud.call(register.ensure_default_image(cloud.cloud.runtime), timeout=120)
    demo = cloud.conn("demo")
    name = settings.DEFAULTS["image_name"]
    # Named as DevStack names a CirrOS UEC image: openstacksdk's image pick ("cirros*-uec") finds it.
    assert name.startswith("cirros") and name.endswith("-uec")
    images = {i.name: i for i in demo.image.images() if i.name.startswith(name)}
    assert sorted(images) == [name, f"{name}-kernel", f"{name}-ramdisk"]
    ami, aki, ari = images[name], images[f"{name}-kernel"], images[f"{name}-ramdisk"]
    assert (ami.disk_format, aki.disk_format, ari.disk_format) == ("ami", "aki", "ari")
    assert all(i.visibility == "public" and i.status == "active" for i in images.values())
    assert ami.kernel_id == aki.id and ami.ramdisk_id == ari.id
    assert ami.os_distro == "cirros" and ami.os_admin_user == "cirros"
    built = build.cached(harness.SHARED_CACHE)
    assert built is not None
    assert aki.size == built.manifest["files"]["vmlinuz"]["size"]
    data = demo.image.download_image(ari).content
    assert len(data) == built.manifest["files"]["initrd.gz"]["size"]
