"""Guest image figures: build time cold (fresh cache: download + assembly) and cached, image size, and under
TCG the time from QEMU start to the user-data marker and to sshd answering (config drive, user-mode network
confined to a test namespace). Usage: python benchmarks/guest_image.py"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.guest import harness
from tests.metadata.instances import instance
from tinystack.guest import build
from tinystack.metadata import configdrive

MARKER = "BENCH-USERDATA-MARKER"


def timed_build(cache: Path, force: bool = False) -> tuple[float, build.BuiltImage]:
    started = time.monotonic()
    image = asyncio.run(build.build(cache, force=force))
    return time.monotonic() - started, image


def boot(image: build.BuiltImage, workdir: Path) -> tuple[float, float, float]:
    key, pub = harness.keypair(workdir)
    inst = instance(name="bench", key=pub, user_data=base64.b64encode(f"#!/bin/sh\necho {MARKER}\n".encode()).decode())
    iso = harness.make_iso(configdrive.files_for(inst), workdir)
    ns = f"tsgb-{workdir.name[-6:]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    guest = harness.Guest(image, workdir, netns=ns, config_drive=iso,
                          nic=["-nic", "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22"])
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        guest.start()
        marker = guest.wait_for(f"user-data: {MARKER}", 180)
        deadline = time.monotonic() + 60
        while True:
            r = subprocess.run(["ip", "netns", "exec", ns, "ssh", "-i", str(key), *harness.SSH_OPTS, "-p", "2222",
                                "cirros@127.0.0.1", "true"], capture_output=True)
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        ssh = time.monotonic() - guest.started
        finished = guest.wait_for("boot finished", 60)
        return marker, ssh, finished
    finally:
        guest.stop()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tsg-bench-") as tmp:
        cache = Path(tmp) / "cache"
        cold, image = timed_build(cache)
        cached, _ = timed_build(cache)
        rebuild, again = timed_build(cache, force=True)  # packages on disk: assembly only
        same = again.manifest["files"] == image.manifest["files"]
        print(f"build cold (download + assemble): {cold:6.2f} s")
        print(f"build again, packages cached:     {rebuild:6.2f} s   reproducible: {same}")
        print(f"build, image cached:              {cached:6.2f} s   ({cold / cached:.0f}x faster than cold)")
        for name, info in image.manifest["files"].items():
            print(f"  {name:<10} {info['size'] / 2**20:6.2f} MiB")
        print(f"  total      {image.total_size / 2**20:6.2f} MiB (limit 40 MiB)")
        work = Path(tmp) / "boot"
        work.mkdir()
        marker, ssh, finished = boot(image, work)
        print(f"TCG boot: user-data marker after {marker:5.2f} s, ssh answers after {ssh:5.2f} s, "
              f"boot finished after {finished:5.2f} s (from QEMU start)")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
