"""Helpers for the e2e tests that boot real guests: reach a guest over ssh from the cloud's stand-in for the
host's network, read its console, boot one through openstacksdk, and remove what a test made even when it
failed half-way."""

from __future__ import annotations

import base64
import contextlib
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openstack.connection

from tests.livecloud import LiveCloud
from tests.waiting import wait_for
from tinystack.guest import settings as guest_settings

# Under TCG on a loaded 2-core machine a boot to sshd takes from about 20 s to well over a minute.
BOOT_TIMEOUT = 300.0


def unique(prefix: str) -> str:
    """A name no other test on a shared cloud uses (the tests share the ``demo`` project)."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def ssh(cloud: LiveCloud, key: Path, ip: str, command: str, attempts: int = 3) -> subprocess.CompletedProcess[str]:
    """Run a (read-only) command in the guest. A session that hangs, or that ssh itself fails (exit 255, not the
    command's: seen now and then with a TCG guest on a loaded machine, and just after a boot while sshd settles),
    is tried again."""
    result: subprocess.CompletedProcess[str] | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(1)
        try:
            result = subprocess.run(["ip", "netns", "exec", cloud.external_netns, "ssh", "-i", str(key),
                                     "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                     "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=5",
                                     "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR", f"cirros@{ip}", command],
                                    capture_output=True, text=True, timeout=40, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            if attempt == attempts - 1:
                raise
            continue
        if result.returncode != 255:
            return result
    assert result is not None
    return result


def wait_ssh(cloud: LiveCloud, key: Path, ip: str, timeout: float = BOOT_TIMEOUT) -> None:
    wait_for(lambda: ssh(cloud, key, ip, "true", attempts=1).returncode == 0, timeout, f"{ip} to answer ssh",
             interval=1)


def console(conn: openstack.connection.Connection, server: Any) -> str:
    return str(conn.compute.get_server_console_output(server)["output"])


def wait_console(conn: openstack.connection.Connection, server: Any, done: str | Callable[[str], bool],
                 timeout: float = BOOT_TIMEOUT, what: str = "") -> str:
    """The console once it shows ``done`` (a string it contains, or a predicate on it)."""
    check = (lambda text: done in text) if isinstance(done, str) else done
    last = [""]

    def ready() -> str | None:
        last[0] = console(conn, server)
        return last[0] if check(last[0]) else None

    try:
        found: str = wait_for(ready, timeout, what or f"{done!r} on the console", interval=1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nthe console's tail:\n{last[0][-3000:]}") from None
    return found


def active(conn: openstack.connection.Connection, server: Any, timeout: float = 180) -> Any:
    return conn.compute.wait_for_server(conn.compute.get_server(server), status="ACTIVE", failures=["ERROR"],
                                        interval=0.5, wait=timeout)


def network(conn: openstack.connection.Connection, name: str) -> Any:
    return conn.network.find_network(name, ignore_missing=False)


def boot_on(conn: openstack.connection.Connection, name: str, host: str, user_data: str) -> Any:
    """A guest of the default image on ``private``, placed on ``host`` (``nova:<host>``), once ACTIVE there."""
    created = conn.compute.create_server(
        name=name, image_id=conn.image.find_image(guest_settings.DEFAULTS["image_name"], ignore_missing=False).id,
        flavor_id=conn.compute.find_flavor("m1.tiny", ignore_missing=False).id,
        networks=[{"uuid": network(conn, "private").id}], availability_zone=f"nova:{host}",
        user_data=base64.b64encode(user_data.encode()).decode())
    shown = active(conn, created)
    assert shown.compute_host == host
    return shown


def pings(text: str) -> list[str]:
    """The outcomes (``ok``, ``fail``) of the ``ping <uptime> <outcome>`` lines a pinger guest printed."""
    return re.findall(r"^ping \d+\.\d+ (ok|fail)", text, re.M)


def add_floating_ip(conn: openstack.connection.Connection, server: Any) -> Any:
    """A new floating IP from ``public`` on the server's port (Neutron's way: Nova's addFloatingIp action went in
    2.44)."""
    [port] = conn.network.ports(device_id=server.id)
    return conn.network.create_ip(floating_network_id=network(conn, "public").id, port_id=port.id)


class Leftovers:
    """What a test made on a shared cloud, removed at its end whether it passed or not (best effort: a leftover
    must not hide the test's own failure)."""

    def __init__(self, conn: openstack.connection.Connection) -> None:
        self.conn = conn
        self.undo: list[Callable[[], object]] = []

    def server(self, server: Any) -> Any:
        def delete() -> None:
            self.conn.compute.delete_server(server, ignore_missing=True)
            self.conn.compute.wait_for_delete(server, interval=0.5, wait=120)
        self.undo.append(delete)
        return server

    def add(self, undo: Callable[[], object]) -> None:
        self.undo.append(undo)

    def close(self) -> None:
        for undo in reversed(self.undo):
            with contextlib.suppress(Exception):
                undo()


@contextlib.contextmanager
def leftovers(conn: openstack.connection.Connection) -> Iterator[Leftovers]:
    made = Leftovers(conn)
    try:
        yield made
    finally:
        made.close()


@dataclass
class SshGuest:
    """A running guest in ``demo`` reached over ssh through its floating IP, booted with a config drive, a key and
    user-data; shared by the checks that leave it as they found it (tests/e2e/conftest.py)."""

    cloud: LiveCloud
    conn: openstack.connection.Connection
    server: Any
    name: str
    key: Path
    fip: str

    def ssh(self, command: str) -> subprocess.CompletedProcess[str]:
        return ssh(self.cloud, self.key, self.fip, command)

    def wait_ssh(self) -> None:
        wait_ssh(self.cloud, self.key, self.fip)

    def console(self) -> str:
        return console(self.conn, self.server)


# The shared guest's user-data: one line on the console that names the host it ran on.
USER_DATA = '#!/bin/sh\necho "cd-user-data on $(hostname)"\n'


def boot_ssh_guest(cloud: LiveCloud, workdir: Path, made: Leftovers) -> SshGuest:
    conn = made.conn
    name = unique("vmshared")
    keypair = conn.compute.create_keypair(name=name)
    made.add(lambda: conn.compute.delete_keypair(keypair, ignore_missing=True))
    key = workdir / "shared.pem"
    key.write_text(keypair.private_key)
    key.chmod(0o600)
    group = conn.network.create_security_group(name=name)
    made.add(lambda: conn.network.delete_security_group(group, ignore_missing=True))
    conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress", ethertype="IPv4",
                                            protocol="tcp", port_range_min=22, port_range_max=22)
    image = conn.image.find_image("cirros-0.6.3-x86_64-uec", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    server = made.server(conn.compute.create_server(
        name=name, image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": network(conn, "private").id}],
        key_name=name, security_groups=[{"name": name}], config_drive=True,
        user_data=base64.b64encode(USER_DATA.encode()).decode()))
    server = active(conn, server)
    fip = add_floating_ip(conn, server)
    made.add(lambda: conn.network.delete_ip(fip, ignore_missing=True))
    guest = SshGuest(cloud, conn, server, name, key, str(fip.floating_ip_address))
    guest.wait_ssh()
    return guest
