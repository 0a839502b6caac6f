"""Token validation (``GET /v3/auth/tokens``, 8 concurrent clients) and token issue throughput.

Baselines measured in the same run against the same process: the unauthenticated ``GET /v3`` version
document (the floor of the HTTP stack) for validation, and one bcrypt check for issue.
Usage: python benchmarks/token_validation.py [seconds]   (uses wrk when installed)
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import bcrypt

from benchmarks import _cloud


def issue_body(auth: dict[str, str]) -> dict[str, object]:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "domain": {"name": "Default"}, "password": auth["password"]}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": "Default"}}}}}


async def get_token(url: str, auth: dict[str, str]) -> str:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/auth/tokens", json=issue_body(auth)) as r:
        assert r.status == 201, await r.text()
        return r.headers["X-Subject-Token"]


def wrk(url: str, headers: dict[str, str], seconds: int, connections: int = 8) -> float:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx and url.endswith("/auth/tokens"):
        raise RuntimeError(f"validation failed during the run:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


async def aiohttp_load(url: str, headers: dict[str, str], seconds: int, connections: int = 8) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def client(s: aiohttp.ClientSession) -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            async with s.get(url, headers=headers) as r:
                await r.read()
                count += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:
        await asyncio.gather(*(client(s) for _ in range(connections)))
    return count / seconds


def load(url: str, headers: dict[str, str], seconds: int) -> float:
    if shutil.which("wrk"):
        return wrk(url, headers, seconds)
    return asyncio.run(aiohttp_load(url, headers, seconds))


async def issue_rate(url: str, auth: dict[str, str], n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as s:
        async def one() -> None:
            async with sem, s.post(f"{url}/auth/tokens", json=issue_body(auth)) as r:
                assert r.status == 201
                await r.read()
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - started)


def bcrypt_check_seconds(rounds: int) -> float:
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds))
    started = time.perf_counter()
    for _ in range(5):
        bcrypt.checkpw(b"secret", hashed)
    return (time.perf_counter() - started) / 5


def main(seconds: int = 10) -> None:
    for rounds in (12, 10):
        with tempfile.TemporaryDirectory() as tmp:
            proc, _ = _cloud.start(Path(tmp), env={"TINYSTACK_IDENTITY_PASSWORD_HASH_ROUNDS": str(rounds),
                                                   "TINYSTACK_TOKEN_CACHE_SIZE": "10000" if rounds == 12 else "0"})
            try:
                auth = _cloud.cloud_auth(Path(tmp))
                url = auth["auth_url"]
                if rounds == 12:
                    token = asyncio.run(get_token(url, auth))
                    floor = load(url, {}, seconds)
                    rate = load(f"{url}/auth/tokens", {"X-Auth-Token": token, "X-Subject-Token": token}, seconds)
                    print(f"GET /v3 (no auth, HTTP floor):       {floor:8.0f} req/s")
                    print(f"GET /v3/auth/tokens, 8 clients:      {rate:8.0f} req/s  "
                          f"({rate / floor:.2f} of the floor; target >= 3000)")
                else:
                    token = asyncio.run(get_token(url, auth))
                    rate = load(f"{url}/auth/tokens", {"X-Auth-Token": token, "X-Subject-Token": token}, seconds)
                    print(f"GET /v3/auth/tokens, token cache off: {rate:8.0f} req/s  (decrypt each time; subject memo warm)")
                issue = asyncio.run(issue_rate(url, auth, 20, 2))
                check = bcrypt_check_seconds(rounds)
                print(f"POST /v3/auth/tokens, bcrypt cost {rounds}: {issue:6.1f} tokens/s "
                      f"({1000 / issue:.0f} ms each; one bcrypt check alone {check * 1000:.0f} ms, "
                      f"{(1 / issue) / check:.2f}x; 2 cores)")
            finally:
                _cloud.stop(proc)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
