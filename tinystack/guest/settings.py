"""The guest image's settings, read from the ``[guest]`` section with defaults that suit one machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinystack.config import Config

DEFAULTS: dict[str, str] = {
    "cache_dir": "",  # default <state_dir>/guest-cache; several clouds (tests) may share one
    "auto_build": "true",  # build and register the default images at first start when missing
    "kernel_package": "linux-image-cloud-amd64",
    # Named as DevStack registers a CirrOS UEC image, so tools that look for a CirrOS image pick it
    # (openstacksdk's functional tests: "cirros*-uec"; Tempest harnesses: a "cirros" name). docs/image.md.
    "image_name": "cirros-0.6.3-x86_64-uec",
}


@dataclass(frozen=True)
class GuestSettings:
    cache_dir: Path
    auto_build: bool
    kernel_package: str
    image_name: str


def load(config: Config) -> GuestSettings:
    raw = {**DEFAULTS, **config.values.get("guest", {})}
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) in [guest]: {', '.join(sorted(unknown))}")
    return GuestSettings(
        cache_dir=Path(raw["cache_dir"]) if raw["cache_dir"] else config.state_dir / "guest-cache",
        auto_build=raw["auto_build"].strip().lower() in ("1", "true", "yes", "on"),
        kernel_package=raw["kernel_package"],
        image_name=raw["image_name"],
    )
