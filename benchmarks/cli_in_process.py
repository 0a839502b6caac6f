"""What one openstackclient command costs a test: the real ``openstack`` process against the same command run
in the test process (tests/osc.py), both against one live in-process cloud, in the same run.

    .venv/bin/python -m benchmarks.cli_in_process [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests import osc
from tests.livecloud import LiveCloud

COMMANDS = [["server", "list"], ["network", "list"], ["image", "list"], ["token", "issue"]]


def main(rounds: int) -> None:
    cloud = LiveCloud(Path(tempfile.mkdtemp(prefix="tsbench-cli-")))
    try:
        env = {"OS_CLIENT_CONFIG_FILE": str(cloud.clouds_yaml), "OS_CLOUD": "demo"}
        exe = str(Path(sys.executable).with_name("openstack"))
        osc.run(["token", "issue"], env)  # the first in-process run loads the client's plugins once
        sub, inproc = [], []
        for _ in range(rounds):
            for cmd in COMMANDS:
                t = time.perf_counter()
                res = subprocess.run([exe, *cmd], env={**os.environ, **env}, capture_output=True, text=True, check=False)
                sub.append(time.perf_counter() - t)
                assert res.returncode == 0, res.stderr
                t = time.perf_counter()
                got = osc.run(cmd, env)
                inproc.append(time.perf_counter() - t)
                assert got.returncode == 0, got.stderr
        s, i = statistics.median(sub), statistics.median(inproc)
        print(f"openstack command, median of {len(sub)} ({', '.join(' '.join(c) for c in COMMANDS)}):")
        print(f"  own process   {s * 1000:8.1f} ms")
        print(f"  in-process    {i * 1000:8.1f} ms")
        print(f"  ratio         {s / i:8.1f}x")
    finally:
        cloud.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    main(parser.parse_args().rounds)
