"""Image upload and download of a 1 GiB file through a real ``tinystack up``, against a plain file copy
(``shutil.copyfile`` of the same file, source in the page cache, + fsync, on the same filesystem) measured
in the same run; and the server's RSS growth and CPU time during upload.

The client is lean on purpose (sendfile up, recv_into down) so that the figures measure the server. Each
figure is the best of three rounds; downloads run twice per round because on a fresh VM the first write
into never-touched guest memory is several times slower than steady state. MD5 and SHA-512 alone, one
thread each over the same cached file, show the floor an upload that computes both cannot go below: MD5
cannot be split across cores, so an upload never beats the time MD5 alone takes.
Usage: python benchmarks/image_throughput.py [size_mib] [state_dir]
"""

from __future__ import annotations

import hashlib
import http.client
import json
import mmap
import os
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import _cloud

CHUNK = 1024 * 1024


def make_file(path: Path, size: int) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "wb") as f:
        for _ in range(size // CHUNK):
            block = os.urandom(CHUNK)
            md5.update(block)
            f.write(block)
    return md5.hexdigest()


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plain_copy(src: Path, dst: Path) -> float:
    started = time.perf_counter()
    shutil.copyfile(src, dst)
    fsync(dst)
    elapsed = time.perf_counter() - started
    dst.unlink()
    return elapsed


def hashed_copy(src: Path, dst: Path) -> float:
    """The least work an upload must do: copy, MD5 and SHA-512 (each hash on its own thread), fsync."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool, open(src, "rb", buffering=0) as f, open(dst, "wb", buffering=0) as out:
        while block := f.read(4 * CHUNK):
            jobs = [pool.submit(md5.update, block), pool.submit(sha.update, block)]
            out.write(block)
            for job in jobs:
                job.result()
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - started
    dst.unlink()
    return elapsed


def hash_only(src: Path, algorithm: str) -> float:
    """One hash over the (cached) file on one thread: what that hash alone costs per byte."""
    hasher = hashlib.new(algorithm)
    started = time.perf_counter()
    with open(src, "rb", buffering=0) as f:
        while block := f.read(4 * CHUNK):
            hasher.update(block)
    return time.perf_counter() - started


def write_cpu(dst: Path, src: Path, direct: bool) -> float:
    """Kernel + user CPU of writing the file in 4 MiB blocks (+ fsync), buffered or with O_DIRECT as the
    store does: what the page-cache copy costs on this machine."""
    block = mmap.mmap(-1, 4 * CHUNK)  # page-aligned, as O_DIRECT wants
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if direct else 0)
    before = resource.getrusage(resource.RUSAGE_SELF)
    with open(src, "rb", buffering=0) as f:
        fd = os.open(dst, flags, 0o600)
        try:
            while n := f.readinto(block):
                os.write(fd, memoryview(block)[:n])
            os.fsync(fd)
        finally:
            os.close(fd)
    after = resource.getrusage(resource.RUSAGE_SELF)
    dst.unlink()
    # The read into the block is the same work both ways; what differs is the write.
    return after.ru_stime - before.ru_stime + after.ru_utime - before.ru_utime


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def token_and_image_url(state_dir: Path) -> tuple[str, str]:
    auth = _cloud.cloud_auth(state_dir)
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "domain": {"name": "Default"}, "password": auth["password"]}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": "Default"}}}}}
    req = urllib.request.Request(auth["auth_url"].rstrip("/") + "/auth/tokens", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        token = resp.headers["X-Subject-Token"]
        catalog = json.load(resp)["token"]["catalog"]
    image = next(e for e in catalog if e["type"] == "image")
    url = next(ep["url"] for ep in image["endpoints"] if ep["interface"] == "public")
    return token, url


def request(url: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, bytes]:
    host = url.split("//", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=600)
    headers = {"X-Auth-Token": token}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def upload(url: str, token: str, image_id: str, src: Path) -> float:
    host, port = url.split("//", 1)[1].split(":")
    size = src.stat().st_size
    head = (f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n")
    started = time.perf_counter()
    with socket.create_connection((host, int(port))) as sock, open(src, "rb") as f:
        sock.sendall(head.encode())
        sock.sendfile(f)
        reply = sock.recv(65536)
    elapsed = time.perf_counter() - started
    if not reply.startswith(b"HTTP/1.1 204"):
        raise RuntimeError(f"upload failed: {reply[:300]!r}")
    return elapsed


def download(url: str, token: str, image_id: str, dst: Path | None) -> tuple[float, str | None]:
    """GET the image into ``dst`` (fsynced), or into nothing when ``dst`` is None (the server's rate)."""
    host, port = url.split("//", 1)[1].split(":")
    buf = bytearray(4 * CHUNK)
    view = memoryview(buf)
    head = f"GET /v2/images/{image_id}/file HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\nConnection: close\r\n\r\n"
    started = time.perf_counter()
    with socket.create_connection((host, int(port))) as sock, open(dst or os.devnull, "wb", buffering=0) as out:
        sock.sendall(head.encode())
        n = sock.recv_into(buf)
        header_end = bytes(view[:n]).index(b"\r\n\r\n") + 4
        headers = bytes(view[:header_end]).decode()
        out.write(view[header_end:n])
        while n := sock.recv_into(buf):
            if dst is not None:
                out.write(view[:n])
        if dst is not None:
            os.fsync(out.fileno())
    elapsed = time.perf_counter() - started
    if not headers.startswith("HTTP/1.1 200"):
        raise RuntimeError(f"download failed: {headers}")
    md5 = next((line.split(":", 1)[1].strip() for line in headers.split("\r\n")
                if line.lower().startswith("content-md5:")), None)
    return elapsed, md5


def settle() -> None:
    """Flush and pause before each timed phase, so one phase's writeback does not slow the next."""
    os.sync()
    time.sleep(1)


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, _cloud.rss_mb(pid), True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, _cloud.rss_mb(self.pid))
            time.sleep(0.02)


def main() -> None:
    size = int(sys.argv[1]) * CHUNK if len(sys.argv) > 1 else 1024 * CHUNK
    base = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="tinystack-bench-"))
    state, work = base / "state", base / "work"
    work.mkdir(parents=True, exist_ok=True)
    src = work / "image.raw"
    md5 = make_file(src, size)
    proc, _ = _cloud.start(state)
    try:
        token, url = token_and_image_url(state)
        copies, hashed, uploads, downloads, discards, growth = [], [], [], [], [], []
        md5s, shas, cpus, client_cpus, buffered_cpu, direct_cpu = [], [], [], [], [], []
        for round_ in range(3):
            settle()
            copies.append(plain_copy(src, state / "copy.raw"))
            settle()
            hashed.append(hashed_copy(src, state / "copy.raw"))
            md5s.append(hash_only(src, "md5"))
            shas.append(hash_only(src, "sha512"))
            settle()
            buffered_cpu.append(write_cpu(state / "copy.raw", src, direct=False))
            settle()
            direct_cpu.append(write_cpu(state / "copy.raw", src, direct=True))
            status, body = request(url, "POST", "/v2/images", token,
                                   {"name": f"bench-{round_}", "disk_format": "raw", "container_format": "bare"})
            assert status == 201, body
            image_id = json.loads(body)["id"]
            settle()
            sampler = RssSampler(proc.pid)
            before = sampler.peak
            sampler.start()
            cpu_before, client_before = cpu_seconds(proc.pid), resource.getrusage(resource.RUSAGE_SELF)
            uploads.append(upload(url, token, image_id, src))
            cpus.append(cpu_seconds(proc.pid) - cpu_before)
            client_after = resource.getrusage(resource.RUSAGE_SELF)
            client_cpus.append(client_after.ru_stime - client_before.ru_stime
                               + client_after.ru_utime - client_before.ru_utime)
            sampler.running = False
            sampler.join()
            growth.append(sampler.peak - before)
            for _ in range(2):
                settle()
                elapsed, content_md5 = download(url, token, image_id, work / "down.raw")
                downloads.append(elapsed)
                assert content_md5 == md5, (content_md5, md5)
                (work / "down.raw").unlink()
            settle()
            discards.append(download(url, token, image_id, None)[0])
            request(url, "DELETE", f"/v2/images/{image_id}", token)
    finally:
        _cloud.stop(proc)
        shutil.rmtree(base, ignore_errors=True)
    mib = size / CHUNK
    copy, hcopy, up, down, served = min(copies), min(hashed), min(uploads), min(downloads), min(discards)
    md5_t, sha_t = min(md5s), min(shas)
    print(f"image size                        {mib:.0f} MiB, best of {len(uploads)} rounds, {os.cpu_count()} CPUs,"
          f" load average {os.getloadavg()[0]:.1f}")
    print(f"plain copy + fsync                {copy:6.2f} s  {mib / copy:7.0f} MiB/s  (baseline;"
          f" rounds {', '.join(f'{mib / c:.0f}' for c in copies)} MiB/s)")
    print(f"md5 alone, one thread             {md5_t:6.2f} s  {mib / md5_t:7.0f} MiB/s  ratio {copy / md5_t:.2f}"
          "  (the ceiling for an upload that computes it)")
    print(f"sha512 alone, one thread          {sha_t:6.2f} s  {mib / sha_t:7.0f} MiB/s  ratio {copy / sha_t:.2f}")
    print(f"copy + md5 + sha512 + fsync       {hcopy:6.2f} s  {mib / hcopy:7.0f} MiB/s  ratio {copy / hcopy:.2f}"
          "  (the hashing Glance requires, no HTTP)")
    print(f"upload (md5+sha512+fsync)         {up:6.2f} s  {mib / up:7.0f} MiB/s  ratio {copy / up:.2f}"
          f"  (vs hashed copy {hcopy / up:.2f}, vs md5 alone {md5_t / up:.2f};"
          f" rounds {', '.join(f'{mib / u:.0f}' for u in uploads)} MiB/s)")
    best = uploads.index(up)
    print(f"CPU during the upload             {cpus[best]:6.2f} s server, {client_cpus[best]:.2f} s client"
          f"  (md5 + sha512 alone: {md5_t + sha_t:.2f} s)")
    print(f"CPU to write the file + fsync     {min(buffered_cpu):6.2f} s buffered, {min(direct_cpu):.2f} s O_DIRECT"
          "  (the store writes O_DIRECT)")
    print(f"download to a file (+ fsync)      {down:6.2f} s  {mib / down:7.0f} MiB/s  ratio {copy / down:.2f}")
    print(f"download, client discards         {served:6.2f} s  {mib / served:7.0f} MiB/s  ratio {copy / served:.2f}"
          "  (what the server sustains)")
    print(f"server RSS growth during upload  {max(growth):.1f} MB (limit 50)")


if __name__ == "__main__":
    main()
