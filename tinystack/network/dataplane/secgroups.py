"""The node namespace's security-group ruleset, kept in force by difference.

Each apply renders only the ports whose documents changed (the rest come from a cache, checked by value;
a document's lists are replaced, never edited in place, as the agent does with every message), compares the
wanted ruleset with the one last written, and sends each tool only what differs: one ``--noflush``
transaction per IP version, one ``nft -f`` for the anti-spoofing table, nothing for an unchanged one.
The first apply after a start, a failed delta, or a ruleset found edited by someone else (``intact``)
replaces the tables whole instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass

from tinystack.core import host
from tinystack.network.dataplane import firewall, iptables, nftables
from tinystack.network.dataplane.firewall import Doc, PortChains
from tinystack.network.dataplane.iptables import Tables

log = logging.getLogger(__name__)

RESTORE = {4: "iptables-restore", 6: "ip6tables-restore"}
SAVE = {4: "iptables-save", 6: "ip6tables-save"}


@dataclass(frozen=True)
class Ruleset:
    v4: Tables
    v6: Tables
    antispoof: nftables.Table

    def tables(self, version: int) -> Tables:
        return self.v4 if version == 4 else self.v6


@dataclass(frozen=True)
class _Rendered:
    doc: Doc
    v4: PortChains
    v6: PortChains
    antispoof: tuple[str, ...]


class SecurityGroups:
    """The ruleset of one namespace. Callers run one ``apply`` or ``intact`` at a time (the agent's firewall lock)."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self._rendered: dict[str, _Rendered] = {}
        self._applied: Ruleset | None = None  # what the kernel holds, as last written by us; None: unknown

    def _render(self, ports: list[Doc]) -> dict[str, _Rendered]:
        out = {}
        for port in ports:
            hit = self._rendered.get(port["id"])
            if hit is None or hit.doc != port:
                # A copy of the top level: a caller that sets a key of its document anew is seen next time.
                hit = _Rendered(dict(port), firewall.port_chains(port, 4), firewall.port_chains(port, 6),
                                firewall.antispoof_chain(port))
            out[port["id"]] = hit
        self._rendered = out  # ports gone leave the cache
        return out

    def wanted(self, ports: list[Doc], networks: list[str]) -> Ruleset:
        rendered = self._render([p for p in ports if firewall.filtered(p)])
        return Ruleset(v4=firewall.tables(((i, r.v4) for i, r in rendered.items()), networks),
                       v6=firewall.tables(((i, r.v6) for i, r in rendered.items()), networks),
                       antispoof=firewall.antispoof((i, r.antispoof) for i, r in rendered.items()))

    async def apply(self, ports: list[Doc], networks: list[str]) -> None:
        """Put the ruleset for ``ports`` in force; returns once the kernel holds it."""
        want = self.wanted(ports, networks)
        applied, self._applied = self._applied, None  # unknown until this apply is known to have succeeded
        if applied is not None:
            try:
                await self._update(applied, want)
                self._applied = want
                return
            except (host.CommandFailed, iptables.NeedsReplace) as exc:
                log.warning("network: firewall delta failed (%s); replacing the whole ruleset", exc)
        await self._replace(want)
        self._applied = want

    async def _update(self, old: Ruleset, new: Ruleset) -> None:
        jobs: list[Awaitable[host.Completed]] = []
        for version in (4, 6):
            text = iptables.delta_document(old.tables(version), new.tables(version))
            if text is not None:
                jobs.append(host.run([RESTORE[version], "-w", "5", "--noflush"], netns=self.netns, input=text.encode()))
        text = nftables.delta_document(firewall.NFT_TABLE, old.antispoof, new.antispoof)
        if text is not None:
            jobs.append(host.run(["nft", "-f", "-"], netns=self.netns, input=text.encode()))
        await _all(jobs)

    async def _replace(self, want: Ruleset) -> None:
        # Each tool replaces its whole table in one kernel transaction; the three touch separate tables.
        await _all([
            *(host.run([RESTORE[v], "-w", "5"], netns=self.netns,
                       input=iptables.restore_document(want.tables(v)).encode()) for v in (4, 6)),
            host.run(["nft", "-f", "-"], netns=self.netns,
                     input=nftables.replace_document(firewall.NFT_TABLE, want.antispoof).encode())])

    async def intact(self) -> bool:
        """Whether the kernel still holds the ruleset last applied (same chains, same rule counts, same map).

        When it does not, the next apply replaces the tables whole.
        """
        applied = self._applied
        if applied is None:
            return False
        if not await self._holds(applied):
            self._applied = None
            return False
        return True

    async def _holds(self, applied: Ruleset) -> bool:
        for version in (4, 6):
            want = applied.tables(version)
            out = await host.run([SAVE[version]], netns=self.netns)
            if iptables.saved_shape(out.stdout, set(want)) != iptables.shape(want):
                return False
        out = await host.run(["nft", "-j", "list", "table", "bridge", firewall.NFT_TABLE], netns=self.netns, check=False)
        return out.returncode == 0 and nftables.intact(applied.antispoof, nftables.listed(out.stdout))


async def _all(jobs: list[Awaitable[host.Completed]]) -> None:
    """Run ``jobs`` side by side and wait for every one, then raise the first failure."""
    results = await asyncio.gather(*jobs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
