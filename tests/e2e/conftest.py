"""One real-guest cloud per test session (per xdist worker), and one guest on it shared by the checks that leave
it as they found it.

Starting a cloud with the dataplane and registering the default image costs seconds, and every TCG boot costs
several CPU-seconds on a 2-core machine, so the e2e modules whose settings are the defaults share both. A test
on them keeps apart from the others by unique names (``guests.unique``) and removes what it made, even when it
fails (``guests.leftovers``). Modules that need other settings start their own cloud and say why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e import guests
from tests.livecloud import LiveCloud


@pytest.fixture(scope="session")
def guest_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    """A cloud that boots real QEMU guests (real network driver too), with ``cirros-0.6.3-x86_64-uec`` registered."""
    cloud = LiveCloud(tmp_path_factory.mktemp("guestcloud"), compute__driver="qemu", guest__auto_build="true")
    try:
        cloud.wait_for_default_image()
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture(scope="session")
def ssh_guest(guest_cloud: LiveCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[guests.SshGuest]:
    """A running guest of ``demo`` with a config drive, user-data (``guests.USER_DATA``), a key and a floating IP,
    answering ssh. A test that changes it (stops it, attaches a volume) puts it back before it ends."""
    with guests.leftovers(guest_cloud.conn("demo")) as made:
        yield guests.boot_ssh_guest(guest_cloud, tmp_path_factory.mktemp("sshguest"), made)
