"""Packet probes run inside a test namespace, timed in-process (no process start in the figures).

``python -m benchmarks.netprobe dhcp IFACE MAC [ROUNDS]``: a minimal DHCPv4 client on a raw packet
socket; one JSON line per round with DISCOVER→OFFER, REQUEST→ACK and the whole exchange in ms.
``python -m benchmarks.netprobe arp IFACE MAC TARGET [ROUNDS]``: ARP request → reply round trips (an
ARP probe, sender 0.0.0.0), the kernel answering over the same path: the baseline for DHCP.
``python -m benchmarks.netprobe icmp TARGET [SECONDS]``: an echo request every 2 ms until the first reply;
prints ``ready`` once sending, then the wall-clock time of the first reply (or ``none``).
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import time

ETH_P_IP, ETH_P_ARP = 0x0800, 0x0806
MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK = 1, 2, 3, 5
PARAMS = bytes([1, 3, 6, 15, 121])
BROADCAST_MAC, BROADCAST_IP, ZERO_IP = b"\xff" * 6, b"\xff" * 4, b"\0" * 4


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _udp_frame(src_mac: bytes, bootp: bytes) -> bytes:
    """A broadcast DHCP client frame from 0.0.0.0:68 to 255.255.255.255:67 (UDP checksum 0: none, allowed)."""
    udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, ZERO_IP, BROADCAST_IP)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return BROADCAST_MAC + src_mac + struct.pack("!H", ETH_P_IP) + header + udp


def _bootp(mac: bytes, xid: int, kind: int, options: bytes = b"") -> bytes:
    fixed = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, ZERO_IP, ZERO_IP, ZERO_IP,
                        ZERO_IP, mac + b"\0" * 10, b"", b"")
    return fixed + MAGIC + bytes([53, 1, kind]) + options + bytes([55, len(PARAMS)]) + PARAMS + b"\xff"


def _options(raw: bytes) -> dict[int, bytes]:
    found, i = {}, 0
    while i + 1 < len(raw) and raw[i] != 255:
        if raw[i] == 0:
            i += 1
            continue
        found[raw[i]] = raw[i + 2:i + 2 + raw[i + 1]]
        i += 2 + raw[i + 1]
    return found


def _reply(sock: socket.socket, xid: int, deadline: float) -> tuple[int, bytes, dict[int, bytes]]:
    """(message type, offered address, options) of the next DHCP reply to ``xid``."""
    while True:
        left = deadline - time.perf_counter()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            raise TimeoutError("no DHCP reply")
        ip = sock.recv(4096)[14:]
        if len(ip) < 28 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4:]
        bootp = udp[8:]
        if (struct.unpack("!H", udp[2:4])[0] != 68 or len(bootp) < 240 or bootp[0] != 2
                or struct.unpack("!I", bootp[4:8])[0] != xid or bootp[236:240] != MAGIC):
            continue
        options = _options(bootp[240:])
        return options.get(53, b"\0")[0], bootp[16:20], options


def dhcp(ifname: str, mac_text: str) -> dict[str, object]:
    mac = bytes.fromhex(mac_text.replace(":", ""))
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP)) as sock:
        sock.bind((ifname, ETH_P_IP))
        xid = int.from_bytes(os.urandom(4), "big")
        t0 = time.perf_counter()
        sock.send(_udp_frame(mac, _bootp(mac, xid, DISCOVER)))
        kind, offered, options = _reply(sock, xid, t0 + 2)
        t1 = time.perf_counter()
        if kind != OFFER:
            raise RuntimeError(f"expected DHCPOFFER, got message type {kind}")
        request = bytes([50, 4]) + offered + bytes([54, 4]) + options[54]
        sock.send(_udp_frame(mac, _bootp(mac, xid, REQUEST, request)))
        kind, acked, _ = _reply(sock, xid, t1 + 2)
        t2 = time.perf_counter()
        if kind != ACK:
            raise RuntimeError(f"expected DHCPACK, got message type {kind}")
    return {"offer_ms": (t1 - t0) * 1000, "ack_ms": (t2 - t1) * 1000, "exchange_ms": (t2 - t0) * 1000,
            "address": socket.inet_ntoa(acked)}


def arp(ifname: str, mac_text: str, target: str) -> float:
    """One ARP probe (who-has ``target``, sender 0.0.0.0) → reply, in ms."""
    mac, want = bytes.fromhex(mac_text.replace(":", "")), socket.inet_aton(target)
    payload = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, mac, ZERO_IP, b"\0" * 6, want)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((ifname, ETH_P_ARP))
        t0 = time.perf_counter()
        sock.send(BROADCAST_MAC + mac + struct.pack("!H", ETH_P_ARP) + payload)
        while True:
            left = t0 + 2 - time.perf_counter()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                raise TimeoutError(f"no ARP reply from {target}")
            frame = sock.recv(128)[14:]
            if len(frame) >= 28 and struct.unpack("!H", frame[6:8])[0] == 2 and frame[14:18] == want:
                return (time.perf_counter() - t0) * 1000


def icmp_first_reply(target: str, seconds: float) -> float | None:
    """Echo requests every 2 ms until one is answered; the wall-clock time of that reply."""
    ident = os.getpid() & 0xFFFF
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        print("ready", flush=True)
        end, seq = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            seq = (seq + 1) & 0xFFFF
            packet = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"tinystack-probe"
            packet = packet[:2] + struct.pack("!H", _checksum(packet)) + packet[4:]
            sock.sendto(packet, (target, 0))
            deadline = time.monotonic() + 0.002
            while (left := deadline - time.monotonic()) > 0 and select.select([sock], [], [], left)[0]:
                reply = sock.recv(2048)
                icmp = reply[(reply[0] & 0x0F) * 4:]
                if icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
                    return time.time()
    return None


def main(argv: list[str]) -> None:
    kind, args = argv[0], argv[1:]
    if kind == "dhcp":
        for _ in range(int(args[2]) if len(args) > 2 else 1):
            print(json.dumps(dhcp(args[0], args[1])), flush=True)
    elif kind == "arp":
        for _ in range(int(args[3]) if len(args) > 3 else 1):
            print(json.dumps({"arp_ms": arp(args[0], args[1], args[2])}), flush=True)
    elif kind == "icmp":
        first = icmp_first_reply(args[0], float(args[1]) if len(args) > 1 else 30.0)
        print("none" if first is None else repr(first), flush=True)
    else:
        raise SystemExit(f"unknown probe {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
