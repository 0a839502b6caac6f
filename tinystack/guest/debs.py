"""Debian packages for the image: which files apt would fetch (names, sizes, sha256), fetching them into the
cache with ``apt-get download`` (the only network the build uses), and unpacking them with ``dpkg-deb -x``."""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tinystack.core import host

_URI = re.compile(r"^'(?P<uri>[^']+)' (?P<file>\S+) (?P<size>\d+) SHA256:(?P<sha256>[0-9a-f]{64})$")


@dataclass(frozen=True)
class Deb:
    package: str
    filename: str
    size: int
    sha256: str


async def kernel_package(meta: str) -> str:
    """The versioned kernel package a meta package (``linux-image-cloud-amd64``) depends on."""
    out = (await host.run(["apt-cache", "show", "--no-all-versions", meta])).stdout
    for line in out.splitlines():
        if line.startswith(("Depends:", "Pre-Depends:")):
            for alt in line.split(":", 1)[1].split(","):
                name = alt.split("|")[0].split("(")[0].strip()
                if name.startswith("linux-image-") and name != meta:
                    return name
    raise RuntimeError(f"{meta}: no linux-image-* dependency in `apt-cache show`")


async def resolve(packages: list[str]) -> list[Deb]:
    """What ``apt-get download`` would fetch for ``packages``: read from apt's lists, no network."""
    out = (await host.run(["apt-get", "download", "--print-uris", *packages])).stdout
    found: dict[str, Deb] = {}
    for line in out.splitlines():
        if not line.startswith("'"):
            continue
        m = _URI.match(line)
        if not m:
            raise RuntimeError(f"unexpected apt-get --print-uris line: {line!r}")
        # apt prints in its own order; the file name starts with the package name.
        package = m["file"].split("_", 1)[0]
        found[package] = Deb(package, m["file"], int(m["size"]), m["sha256"])
    missing = [p for p in packages if p not in found]
    if missing:
        raise RuntimeError(f"apt knows no candidate for: {', '.join(missing)}")
    return [found[p] for p in packages]


def _intact(path: Path, deb: Deb) -> bool:
    if not path.is_file() or path.stat().st_size != deb.size:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == deb.sha256


async def fetch(debs: list[Deb], directory: Path) -> dict[str, Path]:
    """Each package's .deb in ``directory``, downloading only what is missing or damaged."""
    directory.mkdir(parents=True, exist_ok=True)
    missing = [d for d in debs if not _intact(directory / d.filename, d)]
    if missing:
        # apt-get download writes into the working directory; `env -C` sets it without a shell.
        await host.run(["env", "-C", str(directory), "apt-get", "download", "-q",
                         *[d.package for d in missing]], timeout=600)
        for d in missing:
            if not _intact(directory / d.filename, d):
                raise RuntimeError(f"{d.filename}: download failed or does not match apt's sha256")
    return {d.package: directory / d.filename for d in debs}


async def extract(deb: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    await host.run(["dpkg-deb", "-x", str(deb), str(target)], timeout=300)


async def needed_libraries(binary: Path, root: Path, extra_dirs: Sequence[Path] = ()) -> list[Path]:
    """The shared objects ``binary`` loads, found inside ``root`` (ldd with the tree's library dirs first) or
    in ``extra_dirs`` (a package's private directory that the binary names in its RUNPATH)."""
    libdirs = [root / "lib/x86_64-linux-gnu", root / "usr/lib/x86_64-linux-gnu", root / "lib64", *extra_dirs]
    result = await host.run(["env", f"LD_LIBRARY_PATH={':'.join(map(str, libdirs))}", "ldd", str(binary)])
    found: list[Path] = []
    for line in result.stdout.splitlines():
        words = line.split()
        if not words or words[0].startswith("linux-vdso"):
            continue
        if "not found" in line:
            raise RuntimeError(f"{binary.name}: {words[0]} is in none of the packages")
        name = Path(words[0]).name
        for d in libdirs:
            if (d / name).exists():
                found.append(d / name)
                break
        else:
            raise RuntimeError(f"{binary.name}: {shlex.quote(name)} resolved outside the package tree")
    return found
