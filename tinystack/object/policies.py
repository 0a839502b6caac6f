"""Storage policies (Swift's): each policy has an index, a name and its own object ring (``object.ring`` for
policy 0, ``object-<n>.ring`` for the others) with its own replica count, and keeps its objects in a directory of
its own on each device (``objects``, ``objects-<n>``). A container's policy is chosen when it is created
(``X-Storage-Policy``) and kept by the container servers; every object request names it to the object servers
in ``X-Backend-Storage-Policy-Index``."""

from __future__ import annotations

from dataclasses import dataclass

INDEX_HEADER = "X-Backend-Storage-Policy-Index"
DEFAULT_HEADER = "X-Backend-Storage-Policy-Default"
META_KEY = INDEX_HEADER.lower()  # where a container database keeps its policy (a metadata item clients never see)


@dataclass(frozen=True)
class Policy:
    index: int
    name: str
    replicas: int
    default: bool = False

    @property
    def ring(self) -> str:
        """The ring's name (its file is ``<rings_dir>/<ring>.ring``)."""
        return ring_name(self.index)

    @property
    def datadir(self) -> str:
        return datadir(self.index)


def ring_name(index: int) -> str:
    return "object" if index == 0 else f"object-{index}"


def datadir(index: int) -> str:
    return "objects" if index == 0 else f"objects-{index}"


def index_of_datadir(name: str) -> int | None:
    """The policy index of a device's ``objects[-<n>]`` directory; None for anything else."""
    if name == "objects":
        return 0
    if name.startswith("objects-") and name[8:].isdigit():
        return int(name[8:])
    return None


def parse(text: str, replicas: int) -> tuple[Policy, ...]:
    """``name[:replicas][,name[:replicas]...]``: the policies in index order (0 first, the default); a policy
    without a replica count has ``replicas``. ValueError for an empty list, a repeated name or a bad count."""
    out: list[Policy] = []
    seen: set[str] = set()
    for i, item in enumerate(p.strip() for p in text.split(",")):
        name, _, count = item.partition(":")
        name = name.strip()
        if not name or name.lower() in seen or "/" in name or " " in name:
            raise ValueError(f"bad storage policy name {name!r} in [object] policies")
        seen.add(name.lower())
        n = int(count) if count.strip() else replicas
        if n < 1:
            raise ValueError(f"storage policy {name!r} needs at least one replica")
        out.append(Policy(i, name, n, default=i == 0))
    if not out:
        raise ValueError("[object] policies lists no policy")
    return tuple(out)


def by_name(policies: tuple[Policy, ...], name: str) -> Policy | None:
    return next((p for p in policies if p.name.lower() == name.strip().lower()), None)


def by_index(policies: tuple[Policy, ...], index: int) -> Policy | None:
    return next((p for p in policies if p.index == index), None)
