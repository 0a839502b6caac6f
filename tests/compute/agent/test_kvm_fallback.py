"""KVM that is there but kills guests: the node decides by booting a Linux kernel, falls back to TCG at run
time, and with ``kvm = on`` the guest's fault names the KVM error.

Broken KVM is played by a QEMU wrapper: the probe's kernel and TCG guests run for real (KVM swapped for
TCG), while a guest started under KVM dies at once with QEMU's ``KVM internal error``, as on a host whose
KVM fails every Linux guest.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.compute.agent import testguest
from tests.compute.agent.conftest import GuestImages, NodeNs
from tests.compute.agent.test_qemu_driver import Run, console, make_spec, until
from tests.livecloud import GUEST_CACHE, LiveCloud
from tinystack.compute.drivers.base import CRASHED, RUNNING
from tinystack.compute.drivers.qemu import QemuDriver, accel, process, qmp
from tinystack.compute.drivers.qemu.layout import InstanceDir
from tinystack.guest import build as guest_build

pytestmark = [pytest.mark.guest, pytest.mark.privileged, pytest.mark.slow]

WRAPPER = """#!/bin/sh
echo "$*" >> {log}
case " $* " in
  *" -daemonize "*" -accel kvm "*|*" -accel kvm "*" -daemonize "*)
    echo "KVM internal error. Suberror: 1" >&2
    echo "emulation failure" >&2
    exit 1;;
esac
for a do
  shift
  case "$a" in kvm) a=tcg;; host) a=max;; esac
  set -- "$@" "$a"
done
exec qemu-system-x86_64 "$@"
"""


def broken_kvm_qemu(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "qemu-calls.log"
    wrapper = tmp_path / "qemu-broken-kvm"
    wrapper.write_text(WRAPPER.format(log=log))
    wrapper.chmod(0o755)
    return wrapper, log


@pytest.fixture(scope="module")
def probe_image() -> tuple[Path, Path]:
    """The default guest's kernel and ramdisk, which carry the probe init (built once, cached)."""
    asyncio.run(guest_build.build(Path(GUEST_CACHE)))
    files = guest_build.probe_files(Path(GUEST_CACHE))
    assert files is not None
    return files


def test_guest_dying_under_kvm_runs_under_tcg_and_kvm_on_names_the_error(
        live: LiveCloud, guest_images: GuestImages, node_ns: NodeNs, tmp_path: Path,
        probe_image: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    wrapper, calls = broken_kvm_qemu(tmp_path)
    mode = {"kvm": "auto"}
    # The wrapper runs the "KVM" probe under TCG, where a loaded machine can take longer than a real KVM boot's
    # allowance; this test is about the guest that dies after a good probe, not about the probe's deadline.
    monkeypatch.setattr(accel, "PROBE_TIMEOUT", 300.0)

    def driver(tmp: Path, images: GuestImages, netns: str | None) -> QemuDriver:
        d = make_real(tmp, images, netns, kvm=mode["kvm"], qemu=str(wrapper))
        # The wrapper plays a /dev/kvm that exists, whatever this machine has.
        d.accel.device = str(wrapper)
        d.accel.probe_image = lambda: probe_image
        return d

    monkeypatch.setattr("tests.compute.agent.test_qemu_driver.make_driver", driver)
    port_id = uuid.uuid4().hex
    spec = make_spec(guest_images, node_ns.add_tap(port_id), port_id)
    iid = spec["id"]

    async def scenario() -> None:
        r = Run(tmp_path, guest_images, node_ns.name)
        await r.agent.start()
        try:
            status = await r.put(spec)
            # The probe's kernel reached userspace, the guest died under KVM and runs under TCG, never in ERROR.
            assert status["vm_state"] == "active" and status["power_state"] == RUNNING, status
            tried = calls.read_text()
            assert "rdinit=/sbin/kvm-probe" in tried and " -daemonize " in tried and "-accel kvm" in tried
            pid = process.pid_of(InstanceDir(tmp_path / "instances" / iid))
            assert pid is not None
            assert b"\0-accel\0tcg\0" in Path(f"/proc/{pid}/cmdline").read_bytes()
            await until(lambda: testguest.READY_MARK in console(r.driver, iid), 120, "the guest to boot under TCG")
            assert r.driver.accel.known is False
            assert (await r.driver.host_info()).hypervisor_type == "QEMU"
            verdict = json.loads((tmp_path / "cache" / "kvm-verdict.json").read_text())
            assert "KVM internal error" in verdict["broken"]["reason"]
            await r.put(dict(spec, power="stopped"))
            await r.agent.stop(cleanup=True)

            # A new agent on the same node keeps the verdict: its guests go straight to TCG.
            r.agent = r.new_agent()
            await r.agent.start()
            assert await r.driver.accel.use_kvm() is False

            # [compute] kvm = on: the guest ends in ERROR with a fault that names the KVM error.
            await r.agent.stop(cleanup=True)
            mode["kvm"] = "on"
            r.agent = r.new_agent()
            await r.agent.start()
            port2 = uuid.uuid4().hex
            other = make_spec(guest_images, node_ns.add_tap(port2), port2)
            status = await r.put(other, timeout=180)
            assert status["vm_state"] == "error", status
            assert "KVM internal error" in status["fault"]["message"], status
        finally:
            await r.agent.stop(cleanup=True)

    asyncio.run(scenario())


def make_real(tmp: Path, images: GuestImages, netns: str | None, **kwargs: Any) -> QemuDriver:
    from tinystack.core.svcauth import ServiceAuth

    auth = ServiceAuth.from_file(images.service_yaml)
    return QemuDriver(tmp / "instances", tmp / "cache", lambda: auth, netns=netns, power_off_timeout=20,
                      tap_wait_timeout=5, **kwargs)


# -- a guest that stops with a KVM internal error after it started (QMP runstate internal-error) -----------


def test_internal_error_runstate_restarts_the_guest_under_tcg(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """kvm-pvm's failure: QEMU stays up with the guest stopped in ``internal-error``. The driver restarts it
    under TCG with ``auto`` and reports a fault naming KVM with ``on``."""
    iid = str(uuid.uuid4())
    states = {"state": "internal-error"}
    restarted: list[str] = []

    async def runstate(_sock: Path) -> str:
        return states["state"]

    async def quit_(_idir: InstanceDir) -> None:
        states["state"] = "gone"

    async def boot(self: QemuDriver, base: InstanceDir, spec: dict[str, Any]) -> None:
        restarted.append("tcg" if not await self.accel.use_kvm() else "kvm")
        states["state"] = "running"

    monkeypatch.setattr(qmp, "runstate", runstate)
    monkeypatch.setattr(process, "pid_of", lambda idir, netns=None: 1 if states["state"] != "gone" else None)
    monkeypatch.setattr(QemuDriver, "_quit", staticmethod(quit_))
    monkeypatch.setattr(QemuDriver, "_boot", boot)
    monkeypatch.setattr(QemuDriver, "_under_kvm", lambda self, idir: True)

    async def scenario(mode: str) -> Any:
        d = QemuDriver(tmp_path / mode, tmp_path / f"cache-{mode}", lambda: None, netns=None, kvm=mode)  # type: ignore[arg-type,return-value]
        idir = InstanceDir(tmp_path / mode / iid)
        idir.path.mkdir(parents=True)
        idir.disk.write_bytes(b"")
        idir.write_launch({"id": iid})
        return await d.get_info(iid), d

    info, d = asyncio.run(scenario("auto"))
    assert info.power_state == RUNNING and info.fault is None and restarted == ["tcg"]
    assert d.accel.known is False and "internal error" in d.accel.reason
    states["state"] = "internal-error"
    info, _ = asyncio.run(scenario("on"))
    assert info.power_state == CRASHED and "KVM internal error" in (info.fault or "")
    assert restarted == ["tcg"]


# -- the verdict itself ---------------------------------------------------------------------------------------


FAKE_QEMU = """#!/bin/sh
case "$*" in
  *--version*) echo "QEMU emulator version 9.9.9";;
  *rdinit=/sbin/kvm-probe*) {probe};;
  *) exec sleep 5;;
esac
"""


def fake_qemu(tmp_path: Path, probe: str) -> str:
    path = tmp_path / f"qemu-{uuid.uuid4().hex[:6]}"
    path.write_text(FAKE_QEMU.format(probe=probe))
    path.chmod(0o755)
    return str(path)


def test_verdict_comes_from_a_linux_boot_and_is_cached_per_host(tmp_path: Path) -> None:
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd"
    kernel.write_bytes(b"kernel")
    initrd.write_bytes(b"initrd")
    cache = tmp_path / "verdict.json"
    device = str(kernel)  # stands in for /dev/kvm: it exists

    def acc(qemu: str, files: tuple[Path, Path] | None = (kernel, initrd)) -> accel.Accelerator:
        return accel.Accelerator("auto", qemu, cache, lambda: files, device=device)

    async def scenario() -> None:
        good = fake_qemu(tmp_path, f'echo "{accel.PROBE_MARK}"')
        dead = fake_qemu(tmp_path, 'echo "KVM internal error. Suberror: 1" >&2; exit 1')
        a = acc(dead)
        assert await a.use_kvm() is False and "KVM internal error" in a.reason
        # Cached for the same QEMU version, host kernel and probe kernel: a good QEMU now is not asked.
        b = acc(good)
        assert await b.use_kvm() is False and b.reason.startswith("probed before")
        cache.unlink()
        c = acc(good)
        assert await c.use_kvm() is True
        # Broken at run time: the next start believes it over any probe.
        await c.mark_broken("a guest stopped with a KVM internal error")
        assert c.known is False
        assert await acc(good).use_kvm() is False
        # No kernel to probe with yet: TCG for now (firmware running under KVM proves nothing about Linux), the
        # real probe once a kernel exists.
        cache.unlink()
        files: dict[str, tuple[Path, Path] | None] = {"f": None}
        d = accel.Accelerator("auto", good, cache, lambda: files["f"], device=device)
        assert await d.use_kvm() is False and "TCG until" in d.reason
        files["f"] = (kernel, initrd)
        assert await d.use_kvm() is True and "userspace" in d.reason
        assert await accel.Accelerator("auto", good, cache, None, device=str(tmp_path / "nokvm")).use_kvm() is False
        assert await accel.Accelerator("off", good, cache).use_kvm() is False
        assert await accel.Accelerator("on", dead, cache).use_kvm() is True

    asyncio.run(scenario())


def test_kvm_error_text() -> None:
    assert accel.kvm_error("QEMU failed to start: KVM internal error. Suberror: 1")
    assert accel.kvm_error("error: failed to set MSR 0x10a to 0x69")
    assert not accel.kvm_error("Could not open '/x/disk': No such file or directory")
    assert accel.uses_kvm(["q", "-accel", "kvm"]) and not accel.uses_kvm(["q", "-accel", "tcg"])
