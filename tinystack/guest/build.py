"""Builds the default guest image from Debian packages: the kernel (aki), an initramfs holding busybox,
dropbear, sudo, the virtio drivers and the boot scripts (ari), and a small ext2 disk for /home (ami).

The result is reproducible (sorted archive, fixed owners and times, ``SOURCE_DATE_EPOCH``) and cached under
``<cache_dir>/image-<key>``, where the key hashes the exact package files and the builder's own sources."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinystack.core import host
from tinystack.guest import cpio, debs, kmods

INIT_DIR = Path(__file__).parent / "init"
# The drivers the guest needs that the cloud kernel builds as modules (ext4 and AF_PACKET are built in).
KERNEL_MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "virtio_scsi", "virtio_console", "virtio_balloon",
                  "virtio_rng", "isofs", "button", "evdev"]
TOOL_PACKAGES = ["busybox-static", "dropbear-bin", "sudo"]
# The libraries of the dynamically linked tools (dropbear; sudo and the PAM modules it loads) come from these
# packages; which files are needed is checked with ldd at build time.
LIB_PACKAGES = ["libc6", "libcrypt1", "libtomcrypt1", "libtommath1", "libgmp10", "zlib1g",
                "libpam0g", "libpam-modules", "libaudit1", "libcap-ng0", "libselinux1", "libpcre2-8-0"]
DEFAULT_EPOCH = 1704067200  # 2024-01-01, when SOURCE_DATE_EPOCH is not set
DISK_MIB = 8
LIBDIR = "lib/x86_64-linux-gnu"
SUDO_LIBEXEC = "usr/libexec/sudo"  # sudo's RUNPATH (libsudo_util) and where it looks for its plugins
PAM_MODULES = f"{LIBDIR}/security"
# The dynamically linked files taken from packages: (package, path in the package and in the image, mode).
BINARIES = [
    ("dropbear-bin", "usr/sbin/dropbear", 0o755),
    ("dropbear-bin", "usr/bin/dropbearkey", 0o755),
    ("dropbear-bin", "usr/bin/dbclient", 0o755),
    # sudo is setuid root; it loads its policy plugin and the PAM modules named in /etc/pam.d/sudo at run time.
    ("sudo", "usr/bin/sudo", 0o4755),
    ("sudo", f"{SUDO_LIBEXEC}/sudoers.so", 0o644),
    ("libpam-modules", f"{PAM_MODULES}/pam_unix.so", 0o644),
    ("libpam-modules", f"{PAM_MODULES}/pam_permit.so", 0o644),
]
# Fixed so that the disk image is the same bytes on every build.
DISK_UUID = "6f0c3a3e-0c5e-4f4e-9d3a-5b7a1e2c0d11"
FILES = ("vmlinuz", "initrd.gz", "disk.img")
# An init that prints one line and powers off: compute boots the kernel with it to learn whether KVM works.
KVM_PROBE = "/sbin/kvm-probe"

PASSWD = "root:x:0:0:root:/root:/bin/sh\ncirros:x:1000:1000:cirros:/home/cirros:/bin/sh\n"
GROUP = "root:x:0:\ntty:x:5:\ncirros:x:1000:\n"
# cirros' password hash is written at boot (admin_pass or the documented default); root is locked.
SHADOW = "root:*:19723:0:99999:7:::\ncirros:!:19723:0:99999:7:::\n"
# As on CirrOS, cirros may do anything as root without a password.
SUDOERS = """Defaults env_reset
Defaults secure_path="/usr/sbin:/usr/bin:/sbin:/bin"
root ALL=(ALL:ALL) ALL
cirros ALL=(ALL) NOPASSWD: ALL
@includedir /etc/sudoers.d
"""
# PAM for sudo (and sudo -i): anyone who is not NOPASSWD proves their password against /etc/shadow, sudo
# checks the account is not expired, and a session needs no setting up in this guest.
PAM_SUDO = """auth     required pam_unix.so
account  required pam_unix.so
session  required pam_permit.so
"""


@dataclass(frozen=True)
class BuiltImage:
    directory: Path
    manifest: dict[str, Any]
    cached: bool

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def ramdisk(self) -> Path:
        return self.directory / "initrd.gz"

    @property
    def disk(self) -> Path:
        return self.directory / "disk.img"

    @property
    def total_size(self) -> int:
        return sum((self.directory / name).stat().st_size for name in FILES)


def source_epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))


def _sources_digest() -> str:
    """Hash of everything in this package that shapes the image, so a changed script makes a new image."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for path in sorted([*here.glob("*.py"), *INIT_DIR.iterdir()]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def cached(cache_dir: Path) -> BuiltImage | None:
    """The newest complete build in the cache, without asking apt anything (for a fast first start)."""
    best: tuple[float, Path] | None = None
    for manifest in cache_dir.glob("image-*/manifest.json"):
        mtime = manifest.stat().st_mtime
        if best is None or mtime > best[0]:
            best = (mtime, manifest.parent)
    if best is None:
        return None
    return BuiltImage(best[1], json.loads((best[1] / "manifest.json").read_text()), cached=True)


def probe_files(cache_dir: Path) -> tuple[Path, Path] | None:
    """The kernel and ramdisk of the newest cached build that carries the KVM probe init, if any."""
    # Newest first; a cache shared with older builders may hold newer builds without the probe.
    for manifest in sorted(cache_dir.glob("image-*/manifest.json"), key=lambda m: m.stat().st_mtime, reverse=True):
        try:
            if json.loads(manifest.read_text()).get("kvm_probe") == KVM_PROBE:
                return manifest.parent / "vmlinuz", manifest.parent / "initrd.gz"
        except (OSError, ValueError):
            continue
    return None


async def build(cache_dir: Path, kernel_meta: str = "linux-image-cloud-amd64", force: bool = False) -> BuiltImage:
    """Build the image (or return the cached build of the same packages and sources)."""
    started = time.monotonic()
    kernel_pkg = await debs.kernel_package(kernel_meta)
    packages = [kernel_pkg, *TOOL_PACKAGES, *LIB_PACKAGES]
    resolved = await debs.resolve(packages)
    epoch = source_epoch()
    key_src = json.dumps([[d.filename, d.sha256] for d in resolved] + [_sources_digest(), epoch])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = cache_dir / f"image-{key}"
    lock = open(cache_dir / ".lock", "w")  # noqa: SIM115 -- held across awaits, closed in finally
    try:
        # Several clouds (or a CLI and a cloud) may share one cache: one build at a time.
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        if (out / "manifest.json").exists() and not force:
            return BuiltImage(out, json.loads((out / "manifest.json").read_text()), cached=True)
        # No other build runs while the lock is held: a build-* directory here is one a cancelled build left
        # (a command it had just started may still have been writing into it when it was removed).
        for stale in cache_dir.glob("build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        files = await debs.fetch(resolved, cache_dir / "debs")
        # A cleanup error must not replace the CancelledError of a build stopped half-way (the next build
        # removes what is left, above).
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix="build-", ignore_cleanup_errors=True) as tmp:
            work = Path(tmp)
            staged = work / "out"
            staged.mkdir()
            modules = await _assemble(work, files, kernel_pkg, epoch, staged)
            await _make_disk(staged / "disk.img", epoch)
            manifest = {
                "key": key,
                "source_date_epoch": epoch,
                "kernel_package": kernel_pkg,
                "kernel_version": modules["version"],
                "kvm_probe": KVM_PROBE,
                "modules": modules["order"],
                "packages": {d.package: d.filename for d in resolved},
                "files": {name: {"size": (staged / name).stat().st_size, "sha256": _sha256(staged / name)}
                          for name in FILES},
                "build_seconds": round(time.monotonic() - started, 2),
            }
            (staged / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            if out.exists():
                shutil.rmtree(out)
            staged.rename(out)
        return BuiltImage(out, manifest, cached=False)
    finally:
        lock.close()


async def _assemble(work: Path, files: dict[str, Path], kernel_pkg: str, epoch: int, staged: Path) -> dict[str, Any]:
    pkgs = work / "pkgs"
    await asyncio.gather(*(debs.extract(path, pkgs / name) for name, path in files.items()))
    root = work / "root"
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "usr/share/udhcpc", "usr/share/tinystack", "etc/init.d",
              "etc/acpi/PWRF", "etc/dropbear", "etc/pam.d", "etc/sudoers.d", LIBDIR, PAM_MODULES, SUDO_LIBEXEC,
              "lib64", "lib/modules", "proc", "sys", "dev", "run", "tmp", "mnt", "home", "root", "var/log"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "var/run").symlink_to("../run")
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "root", 0o700)

    # busybox and a link per applet. It is setuid root (CirrOS builds busybox with FEATURE_SUID too): ping
    # needs a raw socket, and the shell runs its own applets before anything on PATH (FEATURE_SH_STANDALONE),
    # so no other ping could be reached. busybox drops root at start for every applet but the few built to
    # need it (ping, traceroute, su, passwd, login, crontab; mount and findfs, which check the caller). No
    # /etc/busybox.conf: with one, 1.35's shell crashes running an in-process applet as a user.
    busybox = pkgs / "busybox-static/bin/busybox"
    shutil.copyfile(busybox, root / "bin/busybox")
    os.chmod(root / "bin/busybox", 0o4755)
    applets = (await host.run([str(busybox), "--list-full"])).stdout.split()
    for applet in applets:
        link = root / applet
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(root / "bin/busybox", link.parent))
    (root / "init").symlink_to("bin/busybox")

    # dropbear, sudo and its plugins, and the libraries they load.
    libroot = pkgs / "libs"
    for name in LIB_PACKAGES:
        shutil.copytree(pkgs / name, libroot, symlinks=True, dirs_exist_ok=True)
    sudo_private = pkgs / "sudo" / SUDO_LIBEXEC  # libsudo_util, found through sudo's RUNPATH
    for package, rel, mode in BINARIES:
        shutil.copyfile(pkgs / package / rel, root / rel)
        os.chmod(root / rel, mode)
        for lib in await debs.needed_libraries(pkgs / package / rel, libroot, [sudo_private]):
            target = root / (SUDO_LIBEXEC if lib.parent == sudo_private else LIBDIR) / lib.name
            if not target.exists():
                shutil.copyfile(lib.resolve(), target)
                os.chmod(target, 0o755)
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to(f"../{LIBDIR}/ld-linux-x86-64.so.2")

    # The boot scripts.
    scripts = {"inittab": "etc/inittab", "rcS": "etc/init.d/rcS", "rcK": "etc/init.d/rcK",
               "cloud-setup": "usr/sbin/cloud-setup", "udhcpc.script": "usr/share/udhcpc/default.script",
               "json.awk": "usr/share/tinystack/json.awk", "acpi-power": "etc/acpi/PWRF/00000080",
               "lsblk": "usr/bin/lsblk", "kvm-probe": KVM_PROBE.lstrip("/")}
    for src, dst in scripts.items():
        (root / dst).unlink(missing_ok=True)  # never write through a busybox applet link
        shutil.copyfile(INIT_DIR / src, root / dst)
        os.chmod(root / dst, 0o755 if os.access(INIT_DIR / src, os.X_OK) else 0o644)
    etc = root / "etc"
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    (etc / "shadow").write_text(SHADOW)
    os.chmod(etc / "shadow", 0o600)
    # sudo refuses a sudoers that anyone but root may write.
    (etc / "sudoers").write_text(SUDOERS)
    os.chmod(etc / "sudoers", 0o440)
    for service in ("sudo", "sudo-i"):  # sudo -i opens the sudo-i service
        (etc / "pam.d" / service).write_text(PAM_SUDO)
    (etc / "shells").write_text("/bin/sh\n/bin/ash\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n")
    (etc / "hostname").write_text("cirros\n")
    (etc / "hosts").write_text("127.0.0.1 localhost\n")
    (etc / "profile").write_text('export PATH=/sbin:/bin:/usr/sbin:/usr/bin\nexport PS1="\\u@\\h:\\w\\$ "\n')

    # Kernel and modules.
    kroot = pkgs / kernel_pkg
    [vmlinuz] = sorted((kroot / "boot").glob("vmlinuz-*"))
    version = vmlinuz.name.removeprefix("vmlinuz-")
    moddir = kroot / "lib/modules" / version
    index = {ko.stem.replace("-", "_"): ko for ko in moddir.rglob("*.ko")}
    builtin = {Path(line).stem.replace("-", "_")
               for line in (moddir / "modules.builtin").read_text().split()}
    order = kmods.load_order(KERNEL_MODULES, index, builtin)
    for name in order:
        shutil.copyfile(index[name], root / "lib/modules" / f"{name}.ko")
    (root / "lib/modules/load.list").write_text("".join(f"{name}.ko\n" for name in order))
    (etc / "tinystack-release").write_text(f"{version}, busybox, dropbear, sudo\n")
    shutil.copyfile(vmlinuz, staged / "vmlinuz")

    nodes = (cpio.Node("dev/console", stat.S_IFCHR | 0o600, 5, 1), cpio.Node("dev/null", stat.S_IFCHR | 0o666, 1, 3))
    data = await asyncio.to_thread(lambda: cpio.gzipped(cpio.archive(root, epoch, nodes)))
    (staged / "initrd.gz").write_bytes(data)
    return {"version": version, "order": order}


async def _make_disk(path: Path, epoch: int) -> None:
    """An empty ext2 filesystem (label cirros-home) that the guest mounts on /home; fixed UUID and times."""
    await host.run(["env", f"E2FSPROGS_FAKE_TIME={epoch}", "mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024",
                    "-N", "256", "-m", "0", "-L", "cirros-home", "-U", DISK_UUID,
                    "-E", f"root_owner=0:0,hash_seed={DISK_UUID}", str(path), str(DISK_MIB * 1024)])
