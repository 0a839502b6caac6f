"""An nftables ``bridge`` table as data (per-device chains reached through one verdict map) and the ``nft -f``
transactions that apply it: a whole replacement, or a delta touching only the chains and map entries that changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

MAP = "ports"
HOOK_CHAIN = "prerouting"


@dataclass
class Table:
    """Chains of rules, and which input device jumps to which chain (``iifname vmap @ports``)."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    jumps: dict[str, str] = field(default_factory=dict)  # device name → chain


def _quoted(dev: str) -> str:
    return f'"{dev}"'


def _elements(jumps: dict[str, str]) -> str:
    return ", ".join(f"{_quoted(dev)} : jump {chain}" for dev, chain in sorted(jumps.items()))


def replace_document(name: str, table: Table) -> str:
    """Create-or-replace bridge table ``name`` in one transaction (declaring it first makes the delete safe)."""
    lines = [f"table bridge {name}", f"delete table bridge {name}", f"table bridge {name} {{",
             f"  map {MAP} {{ type ifname : verdict; }}",
             f"  chain {HOOK_CHAIN} {{",
             "    type filter hook prerouting priority -300; policy accept;",
             f"    iifname vmap @{MAP}",
             "  }"]
    for chain, rules in sorted(table.chains.items()):
        lines += [f"  chain {chain} {{", *(f"    {rule}" for rule in rules), "  }"]
    lines.append("}")
    if table.jumps:
        lines.append(f"add element bridge {name} {MAP} {{ {_elements(table.jumps)} }}")
    return "\n".join(lines) + "\n"


def delta_document(name: str, old: Table, new: Table) -> str | None:
    """An ``nft -f`` transaction turning ``old`` into ``new``; None when they are equal."""
    changed = [c for c, rules in sorted(new.chains.items()) if old.chains.get(c) != rules]
    gone = sorted(c for c in old.chains if c not in new.chains)
    added = {d: c for d, c in new.jumps.items() if old.jumps.get(d) != c}
    dropped = sorted(d for d in old.jumps if d not in new.jumps or old.jumps[d] != new.jumps[d])
    if not (changed or gone or added or dropped):
        return None
    lines = [f"add chain bridge {name} {c}" for c in changed if c not in old.chains]
    for chain in changed:
        lines.append(f"flush chain bridge {name} {chain}")
        lines += [f"add rule bridge {name} {chain} {rule}" for rule in new.chains[chain]]
    if dropped:  # map entries go before their chains, which they keep in use
        lines.append(f"delete element bridge {name} {MAP} {{ {', '.join(_quoted(d) for d in dropped)} }}")
    if added:
        lines.append(f"add element bridge {name} {MAP} {{ {_elements(added)} }}")
    lines += [f"delete chain bridge {name} {c}" for c in gone]
    return "\n".join(lines) + "\n"


def listed(text: str) -> Table:
    """What ``nft -j list table bridge <name>`` shows, as a Table whose rules are placeholders (counted, not
    compared); the hook chain is listed too, with its one rule when it is intact."""
    table = Table()
    for item in json.loads(text or "{}").get("nftables", ()):
        if "chain" in item:
            table.chains.setdefault(item["chain"]["name"], ())
        elif "rule" in item:
            chain = item["rule"]["chain"]
            table.chains[chain] = (*table.chains.get(chain, ()), "")
        elif "map" in item and item["map"]["name"] == MAP:
            for key, verdict in item["map"].get("elem", ()):
                table.jumps[key] = verdict.get("jump", {}).get("target", "")
    return table


def intact(want: Table, found: Table) -> bool:
    """Whether ``found`` (from ``listed``) has the map entries of ``want``, its hook rule and as many rules
    in every chain."""
    expected = {HOOK_CHAIN: 1, **{c: len(r) for c, r in want.chains.items()}}
    return found.jumps == want.jumps and {c: len(r) for c, r in found.chains.items()} == expected
