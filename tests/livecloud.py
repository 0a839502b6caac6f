"""A live tinystack in a background thread of the test process, on loopback with ephemeral ports."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import openstack
import openstack.connection
import yaml

from tests import osc
from tests.rabbit import remove_now
from tinystack import config, nodes
from tinystack.cloud import Cloud
from tinystack.core.rabbitbus import RabbitBus
from tinystack.guest import settings as guest_settings

# One guest image build shared by every test cloud on the machine (it is reproducible and keyed).
GUEST_CACHE = "/var/tmp/tinystack-guest-cache"


def isolated_node() -> tuple[str, str]:
    """A host name of its own for one test cloud, and the namespace that stands in for its host's network.

    The network agent joins the external network to ``external_netns`` instead of the real host, so a
    test cloud never touches the machine's interfaces; its own host name keeps its node namespace apart.
    """
    host = f"lc{uuid.uuid4().hex[:8]}"
    netns = f"tsx-{host}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
    return host, netns


def remove_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


# The tier of the test being set up or run (tests/conftest.py): a unit test may start no cloud, and an api test
# (which runs without root) none with the real dataplane.
current_tier: str | None = None


class LiveCloud:
    def __init__(self, state_dir: Path, nodes: int = 1, dataplane: bool | None = None, **overrides: str) -> None:
        """``nodes``: how many nodes (network + compute agent pairs) the cloud runs, joined by VXLAN (tinystack/nodes.py).

        ``dataplane``: the real network driver (bridges, dnsmasq, routers in namespaces; needs root) instead of
        the in-memory one; by default only a cloud that boots real guests (``compute__driver="qemu"``) has it,
        so an API test's cloud needs no root and makes no namespace."""
        if dataplane is None:
            dataplane = overrides.get("compute__driver") == "qemu" or overrides.get("network__driver") == "linux"
        self.dataplane = dataplane
        if current_tier == "unit" or (current_tier == "api" and dataplane):
            raise RuntimeError(f"a {current_tier}-tier test may not start a cloud{' with the real dataplane' * dataplane}:"
                               " mark its module with the right tier (tests/conftest.py)")
        if dataplane:
            self.host, self.external_netns = isolated_node()
        else:
            self.host, self.external_netns = f"lc{uuid.uuid4().hex[:8]}", ""
        # Fast defaults for API tests; a dataplane test passes compute__driver="qemu" and guest__auto_build="true".
        settings = {"state_dir": str(state_dir), "bind": "127.0.0.1", "host": self.host,
                    "network__external_netns": self.external_netns,
                    "network__driver": "linux" if dataplane else "fake",
                    "identity__password_hash_rounds": "4",
                    "compute__driver": "fake",
                    "guest__auto_build": "false",
                    "guest__cache_dir": GUEST_CACHE}
        settings.update({f"ports__{name}": "0" for name in config.DEFAULTS["ports"]})
        # The object storage node's backend ports too (picked once, then kept by its rings); a small ring.
        settings.update({f"object__{kind}_port": "0" for kind in ("account", "container", "object")})
        settings["object__part_power"] = "6"
        if nodes > 1:
            settings["nodes__extra"] = str(nodes - 1)
        if overrides.get("bus__transport_url") and "bus__exchange" not in overrides:
            # A broker is shared with other test clouds: an exchange of its own keeps its shared queues apart.
            settings["bus__exchange"] = f"tinystack-{self.host}"
        settings.update(overrides)
        self.config = config.load(None, environ={}, overrides=settings)
        self.cloud = Cloud(self.config)
        self._clouds_lock = threading.Lock()
        self.hosts = self.cloud.hosts
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="live-cloud", daemon=True)
        self._thread.start()
        try:
            self.call(self.cloud.start())
        except BaseException:
            try:
                self.call(self.cloud.stop(), timeout=120)
            finally:
                self._shutdown()
            raise

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        """Run a coroutine on the cloud's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        bus = self.cloud.runtime.bus if self.cloud.runtime is not None else None
        try:
            self.call(self.cloud.stop(), timeout=120)
        finally:
            self._shutdown()
            if isinstance(bus, RabbitBus):
                remove_now(bus.exchange_name, bus.shared_queues, bus.url)

    def _shutdown(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        if not self.dataplane:
            return
        remove_netns(self.external_netns)
        # Whatever a failed start or stop left of this cloud's namespaces, by their exact names.
        for name in [f"tsnode-{h}" for h in self.hosts] + [nodes.underlay_netns(self.host)]:
            if Path("/run/netns", name).exists():
                remove_netns(name)

    def agent(self, kind: type, host: str) -> Any:
        """The running node agent of class ``kind`` for ``host`` (tests reach into its driver)."""
        running = self.cloud.node_agents.running if self.cloud.node_agents is not None else []
        return next(a for a in running if isinstance(a, kind) and getattr(a, "host", None) == host)

    @property
    def clouds_yaml(self) -> Path:
        return self.cloud.clouds_yaml

    def url(self, service: str) -> str:
        return self.cloud.urls[service]

    def conn(self, cloud: str = "admin", **auth: Any) -> openstack.connection.Connection:
        """An openstacksdk connection for one of the clouds in clouds.yaml (or explicit auth)."""
        os.environ["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        if auth:
            return openstack.connect(auth_url=self.url("identity"), region_name="RegionOne", auth=auth)
        return openstack.connect(cloud=cloud)

    def project_conn(self, prefix: str = "proj", role: str = "member") -> openstack.connection.Connection:
        """A connection as a new user holding ``role`` in a new project of its own, also added to clouds.yaml under
        the project's name (for ``cli(cloud=...)``): tests that count what a project has (usage, quotas, lists)
        stay independent of every other test on the same cloud."""
        admin = self.conn("admin")
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        project = admin.identity.create_project(name=name, domain_id="default")
        password = uuid.uuid4().hex
        user = admin.identity.create_user(name=name, password=password, domain_id="default",
                                          default_project_id=project.id)
        admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role(role, ignore_missing=False))
        with self._clouds_lock:
            clouds = yaml.safe_load(self.clouds_yaml.read_text())
            entry = copy.deepcopy(clouds["clouds"]["demo"])
            entry["auth"].update({"username": name, "password": password, "project_name": name})
            clouds["clouds"][name] = entry
            self.clouds_yaml.write_text(yaml.safe_dump(clouds))
        return self.conn(name)

    def wait_for_default_image(self, timeout: float = 300) -> None:
        """Wait until the default guest image (built in the background on a first start) is registered."""
        deadline = time.monotonic() + timeout
        admin = self.conn("admin")
        name = guest_settings.DEFAULTS["image_name"]
        while not any(i.name == name for i in admin.image.images()):
            if time.monotonic() > deadline:
                raise AssertionError("the default image was never registered")
            time.sleep(2)

    def cli(self, *args: str, cloud: str = "admin", check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run python-openstackclient as a user would: its real command line and output, in this process (one
        client start-up for the whole run instead of about a second per command); ``TINYSTACK_TEST_CLI=subprocess``
        runs each command as its own ``openstack`` process instead."""
        env = {"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml), "OS_CLOUD": cloud}
        if os.environ.get("TINYSTACK_TEST_CLI") == "subprocess":
            exe = Path(sys.executable).with_name("openstack")
            proc = subprocess.run([str(exe), *args], env={**os.environ, **env}, capture_output=True, text=True,
                                  timeout=120)
        else:
            proc = osc.run(["--os-cloud", cloud, *args], env)
        if check and proc.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def cli_json(self, *args: str, cloud: str = "admin") -> Any:
        return json.loads(self.cli(*args, "-f", "json", cloud=cloud).stdout)
