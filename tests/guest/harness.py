"""Boots the guest image under QEMU (TCG unless KVM works) for the guest tests and the benchmark: a test
namespace with a tap, dnsmasq and the metadata proxy, or user-mode networking with no host access."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tinystack.guest import build

SHARED_CACHE = Path(os.environ.get("TINYSTACK_GUEST_TEST_CACHE", "/var/tmp/tinystack-guest-cache"))
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"]


def make_iso(files: dict[str, bytes], workdir: Path) -> Path:
    tree = workdir / "configdrive"
    for path, data in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(data)
    iso = workdir / "configdrive.iso"
    subprocess.run(["genisoimage", "-quiet", "-o", str(iso), "-ldots", "-allow-lowercase", "-allow-multidot", "-l",
                    "-J", "-r", "-V", "config-2", str(tree)], check=True, capture_output=True)
    return iso


@dataclass
class Guest:
    image: build.BuiltImage
    workdir: Path
    netns: str | None = None
    nic: list[str] = field(default_factory=list)
    config_drive: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    @property
    def console(self) -> Path:
        return self.workdir / "console.log"

    def start(self) -> None:
        argv = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-m", "256", "-smp", "1",
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-kernel", str(self.image.kernel), "-initrd", str(self.image.ramdisk),
                "-append", "console=ttyS0 quiet",
                "-drive", f"file={self.image.disk},if=virtio,format=raw,snapshot=on",
                "-serial", f"file:{self.console}", *self.nic]
        if self.config_drive is not None:
            argv += ["-drive", f"file={self.config_drive},if=virtio,format=raw,readonly=on"]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / "qemu.err", "wb"))  # noqa: SIM115

    def wait_for(self, text: str, timeout: float = 120) -> float:
        """Seconds from QEMU start until ``text`` shows on the console."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.console.exists() and text in self.console.read_text(errors="replace"):
                return time.monotonic() - self.started
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"QEMU exited: {(self.workdir / 'qemu.err').read_text()}")
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on the console after {timeout}s:\n{self.console.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class TestNetwork:
    """A namespace with a tap for the guest, dnsmasq (fixed lease, option 121 to the metadata address and,
    with ``default_route``, a default route via the gateway) and the metadata proxy bound to
    169.254.169.254:80, forwarding to ``upstream``."""

    workdir: Path
    name: str = field(default_factory=lambda: f"tsgt-{secrets.token_hex(4)}")
    tap: str = "tsgtap0"
    gateway: str = "10.91.0.1"
    guest_ip: str = "10.91.0.5"
    mac: str = "fa:16:3e:91:00:05"
    default_route: bool = False
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True)

    def start(self, upstream: Path, network_id: str, secret_file: Path) -> None:
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self.ip("link", "set", "lo", "up")
        self.ip("addr", "add", "169.254.169.254/32", "dev", "lo")
        self.ip("tuntap", "add", "dev", self.tap, "mode", "tap")
        self.ip("addr", "add", f"{self.gateway}/24", "dev", self.tap)
        self.ip("link", "set", self.tap, "up")
        ns = ["ip", "netns", "exec", self.name]
        routes = f"169.254.169.254/32,{self.gateway}" + (f",0.0.0.0/0,{self.gateway}" if self.default_route else "")
        self.procs.append(subprocess.Popen([
            *ns, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--port=0",
            "--bind-interfaces", f"--interface={self.tap}", "--except-interface=lo",
            f"--dhcp-range={self.guest_ip},static,255.255.255.0,1h", f"--dhcp-host={self.mac},{self.guest_ip},guest",
            f"--dhcp-option=121,{routes}", "--dhcp-option=3",
            f"--dhcp-leasefile={self.workdir / 'leases'}", f"--pid-file={self.workdir / 'dnsmasq.pid'}"],
            stdout=subprocess.DEVNULL, stderr=open(self.workdir / "dnsmasq.log", "wb")))  # noqa: SIM115
        self.procs.append(subprocess.Popen([
            *ns, sys.executable, "-m", "tinystack.metadata.proxy", "--bind", "169.254.169.254", "--port", "80",
            "--upstream", str(upstream), "--network-id", network_id, "--secret-file", str(secret_file)],
            stdout=subprocess.DEVNULL, stderr=open(self.workdir / "proxy.log", "wb")))  # noqa: SIM115

    def ssh(self, key: Path, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        deadline = time.monotonic() + timeout
        while True:
            result = subprocess.run(["ip", "netns", "exec", self.name, "ssh", "-i", str(key), *SSH_OPTS,
                                     f"cirros@{self.guest_ip}", command], capture_output=True, text=True, timeout=30)
            if result.returncode == 0 or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def keypair(workdir: Path) -> tuple[Path, str]:
    key = workdir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tester@tinystack", "-f", str(key)],
                   check=True)
    return key, key.with_suffix(".pub").read_text().strip()


def tools_present() -> bool:
    return all(shutil.which(t) for t in ("qemu-system-x86_64", "genisoimage", "dnsmasq", "ssh", "apt-get"))
