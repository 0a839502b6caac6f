"""iptables rulesets as data (table → chain → rules) and the ``iptables-restore`` documents that apply them.

A whole document replaces the tables it names; a delta document (``--noflush``) rewrites only the chains
whose rules changed, creates new ones and deletes those gone. Either runs as one kernel transaction,
so no packet ever meets half a ruleset.
"""

from __future__ import annotations

Chains = dict[str, tuple[str, ...]]  # chain → its rules, each what follows ``-A <chain>``
Tables = dict[str, Chains]  # table → its chains
Shape = dict[str, dict[str, int]]  # table → chain → number of rules

BUILTIN = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}


class NeedsReplace(ValueError):
    """A built-in chain changed: ``--noflush`` cannot express that, the tables must be replaced whole."""


def _declare(table: str, chain: str) -> str:
    return f":{chain} ACCEPT [0:0]" if chain in BUILTIN.get(table, ()) else f":{chain} - [0:0]"


def restore_document(tables: Tables) -> str:
    """An ``iptables-restore`` document replacing every table in ``tables`` (built-in policies ACCEPT)."""
    lines: list[str] = []
    for table, chains in tables.items():
        lines.append(f"*{table}")
        lines += [_declare(table, chain) for chain in chains]
        lines += [f"-A {chain} {rule}" for chain, rules in chains.items() for rule in rules]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def delta_document(old: Tables, new: Tables) -> str | None:
    """An ``iptables-restore --noflush`` document turning ``old`` into ``new``; None when they are equal.

    Declaring a user chain in ``--noflush`` mode creates or flushes it; chains gone are flushed first and
    deleted last, after every chain that jumped to them has been rewritten in the same transaction.
    """
    lines: list[str] = []
    for table in sorted(set(old) | set(new)):
        before, after = old.get(table, {}), new.get(table, {})
        if before == after:
            continue
        builtin = BUILTIN.get(table, ())
        if any(before.get(chain) != after.get(chain) for chain in builtin if chain in before or chain in after):
            raise NeedsReplace(f"a built-in chain of table {table} changed")
        changed = [c for c, rules in after.items() if c not in builtin and before.get(c) != rules]
        gone = [c for c in before if c not in after]
        lines.append(f"*{table}")
        lines += [_declare(table, chain) for chain in changed + gone]
        lines += [f"-A {chain} {rule}" for chain in changed for rule in after[chain]]
        lines += [f"-X {chain}" for chain in gone]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n" if lines else None


def shape(tables: Tables) -> Shape:
    return {table: {chain: len(rules) for chain, rules in chains.items()} for table, chains in tables.items()}


def saved_shape(text: str, tables: set[str]) -> Shape:
    """The chains and rule counts of ``tables`` in ``iptables-save`` output."""
    found: Shape = {}
    current: dict[str, int] | None = None
    for line in text.splitlines():
        if line.startswith("*"):
            current = found.setdefault(line[1:].strip(), {}) if line[1:].strip() in tables else None
        elif current is None:
            continue
        elif line.startswith(":"):
            current.setdefault(line[1:].split()[0], 0)
        elif line.startswith("-A "):
            chain = line.split()[1]
            current[chain] = current.get(chain, 0) + 1
    return found
