"""``tinystack image build``: build (or find in the cache) the default guest image and say where it is."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from tinystack import config as config_mod
from tinystack.guest import build, settings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tinystack image build",
                                     description="Build the default guest image from Debian packages.")
    parser.add_argument("--config", help="INI configuration file (optional)")
    parser.add_argument("--state-dir", help="the cloud's state dir (the cache is <state-dir>/guest-cache)")
    parser.add_argument("--cache-dir", help="where to keep packages and images (overrides [guest] cache_dir)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a cached image matches")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    args = parser.parse_args(argv)
    overrides = {"state_dir": str(Path(args.state_dir).resolve())} if args.state_dir else {}
    cfg = config_mod.load(Path(args.config) if args.config else None, overrides=overrides)
    conf = settings.load(cfg)
    cache = Path(args.cache_dir) if args.cache_dir else conf.cache_dir
    image = asyncio.run(build.build(cache, conf.kernel_package, force=args.force))
    if args.json:
        print(json.dumps({"directory": str(image.directory), "cached": image.cached, **image.manifest}, indent=2))
        return 0
    state = "cached" if image.cached else f"built in {image.manifest['build_seconds']}s"
    print(f"guest image {image.manifest['key']} ({state}): {image.directory}")
    for name, info in image.manifest["files"].items():
        print(f"  {name:<10} {info['size']:>10} bytes  sha256 {info['sha256']}")
    print(f"  total      {image.total_size:>10} bytes")
    return 0
