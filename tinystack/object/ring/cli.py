"""``tinystack ring <builder-file> <verb> ...``: swift-ring-builder's verbs, so its walkthroughs can be typed as is.

Exit status as swift-ring-builder: 0 done, 1 done with a warning (e.g. balance not yet reached), 2 error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tinystack.object.ring import report
from tinystack.object.ring.builder import RingBuilder, RingBuilderError
from tinystack.object.ring.device import Device, DeviceSpecError, matches, parse_add_value, parse_search_value
from tinystack.object.ring.fileformat import RingFileError
from tinystack.object.ring.ring import Ring

EXIT_OK, EXIT_WARNING, EXIT_ERROR = 0, 1, 2


class CliError(Exception):
    """A request the command refuses; printed, exit status 2."""


def ring_path(builder_path: Path) -> Path:
    return builder_path.with_suffix(".ring") if builder_path.suffix == ".builder" else Path(f"{builder_path}.ring")


def _load(path: Path) -> RingBuilder:
    if not path.exists():
        raise CliError(f"{path} does not exist; create it with `tinystack ring {path} create <part_power> "
                       "<replicas> <min_part_hours>`")
    return RingBuilder.load(path)


def _search(b: RingBuilder, value: str) -> list[Device]:
    criteria = parse_search_value(value)
    return [d for d in b.devs if d is not None and d.id not in b.removing and matches(d, criteria)]


def _pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    if not values or len(values) % 2:
        raise CliError(f"expected pairs of <search-value> <{what}>")
    return list(zip(values[::2], values[1::2], strict=True))


def _pick(b: RingBuilder, value: str, yes: bool) -> list[Device]:
    found = _search(b, value)
    if not found:
        raise CliError(f"no device matches {value!r}")
    if len(found) > 1 and not yes:
        listing = "\n".join("    " + d.describe() for d in found)
        raise CliError(f"{value!r} matches {len(found)} devices:\n{listing}\nadd --yes to change them all")
    return found


def describe(b: RingBuilder, name: str, out: Callable[[str], None]) -> None:
    devs = [d for d in b.devs if d is not None]
    regions = len({d.region for d in devs})
    zones = len({(d.region, d.zone) for d in devs})
    disp = report.dispersion(b).percent if b.a2d is not None else 0.0
    out(f"{name}, build version {b.version}")
    out(f"{b.parts} partitions, {b.replicas:f} replicas, {regions} regions, {zones} zones, {len(devs)} devices, "
        f"{report.balance(b):.2f} balance, {disp:.2f} dispersion")
    left = max(0, int(b.last_moved.max()) + b.min_part_hours * 3600 - int(time.time())) if b.a2d is not None else 0
    out(f"The minimum number of hours before a partition can be reassigned is {b.min_part_hours} "
        f"({left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d} remaining)")
    out(f"The overload factor is {b.overload * 100:.2f}% ({b.overload:.6f})")
    if b.changed:
        out("Devices or parameters changed since the last rebalance: run `rebalance`.")
    if not devs:
        return
    out("Devices:   id region zone  ip address:port  replication ip:port  name weight partitions balance flags meta")
    parts, bal = report.dev_parts(b), report.dev_balances(b)
    for d in devs:
        flags = "DEL" if d.id in b.removing else ""
        out(f"{d.id:>13} {d.region:>6} {d.zone:>4} {d.ip + ':' + str(d.port):>16} "
            f"{d.replication_ip + ':' + str(d.replication_port):>20} {d.device:>5} {d.weight:>6.2f} "
            f"{int(parts[d.id]):>10} {bal[d.id]:>7.2f} {flags:>5} {d.meta}")


def _rebalance_result(b: RingBuilder, moved: int, bal: float, removed: list[Device], out: Callable[[str], None]) -> int:
    disp = report.dispersion(b).percent
    out(f"Reassigned {moved} ({100.0 * moved / b.parts:.2f}%) partitions. Balance is now {bal:.2f}.  "
        f"Dispersion is now {disp:.2f}")
    for d in removed:
        out(f"Removed device {d.describe()}")
    if bal > 1 or disp > 0:
        out("-" * 79)
        out(f"NOTE: Balance of {bal:.2f} (dispersion {disp:.2f}) indicates you should push this ring, wait at least "
            f"{b.min_part_hours} hours, and rebalance/repush.")
        out("-" * 79)
        return EXIT_WARNING
    return EXIT_OK


def _verb_parser(verb: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"tinystack ring <builder-file> {verb}")
    if verb == "create":
        p.add_argument("part_power", type=int)
        p.add_argument("replicas", type=float)
        p.add_argument("min_part_hours", type=int)
    elif verb == "add":
        p.add_argument("values", nargs="*", help="<region/zone/ip/port/device> <weight> pairs")
        for opt in ("region", "zone", "port", "replication-port"):
            p.add_argument(f"--{opt}", type=int)
        for opt in ("ip", "replication-ip", "device", "meta"):
            p.add_argument(f"--{opt}")
        p.add_argument("--weight", type=float)
    elif verb in ("set_weight", "remove"):
        p.add_argument("values", nargs="+")
        p.add_argument("--yes", "-y", action="store_true", help="change every device a search value matches")
    elif verb == "rebalance":
        p.add_argument("--seed", type=int)
        p.add_argument("--force", "-f", action="store_true", help="save the builder even if nothing moved")
    elif verb == "write_ring":
        p.add_argument("--hash-path-prefix", default="")
        p.add_argument("--hash-path-suffix", default="")
    elif verb == "dispersion":
        p.add_argument("search", nargs="?", help="only tiers whose name contains this (r1, r1z2)")
        p.add_argument("--verbose", "-v", action="store_true")
    elif verb == "search":
        p.add_argument("value", nargs="?", help="a search value: d<id>r<region>z<zone>-<ip>:<port>/<device>_<meta>")
        p.add_argument("--path", help="instead: the partition and devices of /account[/container[/object]]")
        p.add_argument("--hash-path-prefix", default=None)
        p.add_argument("--hash-path-suffix", default=None)
    elif verb == "set_replicas":
        p.add_argument("replicas", type=float)
    elif verb == "set_min_part_hours":
        p.add_argument("hours", type=int)
    elif verb == "set_overload":
        p.add_argument("overload", help="a fraction (0.1) or a percentage (10%%)")
    return p


VERBS = ("create", "add", "set_weight", "remove", "rebalance", "write_ring", "dispersion", "validate", "search",
         "set_replicas", "set_min_part_hours", "set_overload", "pretend_min_part_hours_passed")


def _search_path(ring: Ring, path: str, out: Callable[[str], None]) -> None:
    parts = path.strip("/").split("/", 2)
    if not parts[0]:
        raise CliError("--path needs /account[/container[/object]]")
    part, nodes = ring.get_nodes(*parts)  # type: ignore[arg-type]
    out(f"Partition {part}")
    out(f"Hash prefix/suffix: {ring.prefix.decode(errors='replace')!r}/{ring.suffix.decode(errors='replace')!r}")
    for d in nodes:
        out(f"Primary  {d.describe()}")
    for k, d in zip(range(len(nodes) * 2), ring.get_more_nodes(part), strict=False):
        out(f"Handoff {k + 1} {d.describe()}")


def run(path: Path, verb: str, args: list[str], out: Callable[[str], None]) -> int:
    ns = _verb_parser(verb).parse_args(args)
    if verb == "create":
        b = RingBuilder(ns.part_power, ns.replicas, ns.min_part_hours)
        b.save(path)
        return EXIT_OK
    if verb == "search" and path.suffix == ".ring":
        if not ns.path:
            raise CliError("a ring file can only be searched with --path")
        _search_path(Ring.load(path, ns.hash_path_prefix, ns.hash_path_suffix), ns.path, out)
        return EXIT_OK
    b = _load(path)
    if verb == "add":
        if ns.values:
            new = [parse_add_value(v, w) for v, w in _pairs(ns.values, "weight")]
        else:
            if None in (ns.zone, ns.ip, ns.port, ns.device, ns.weight):
                raise CliError("add needs <value> <weight> pairs, or --zone --ip --port --device --weight")
            new = [{"region": ns.region if ns.region is not None else 1, "zone": ns.zone, "ip": ns.ip,
                    "port": ns.port, "device": ns.device, "weight": ns.weight, "meta": ns.meta or "",
                    "replication_ip": ns.replication_ip or "", "replication_port": ns.replication_port or 0}]
        for fields in new:
            dev_id = b.add_dev(fields)
            out(f"Device {b.devs[dev_id].describe()} with {fields['weight']} weight got id {dev_id}")  # type: ignore[union-attr]
    elif verb == "set_weight":
        for value, weight in _pairs(ns.values, "weight"):
            for d in _pick(b, value, ns.yes):
                b.set_weight(d.id, float(weight))
                out(f"{d.describe()} weight set to {float(weight)}")
    elif verb == "remove":
        for value in ns.values:
            for d in _pick(b, value, ns.yes):
                b.remove_dev(d.id)
                out(f"{d.describe()} marked for removal and will be removed next rebalance.")
    elif verb == "rebalance":
        was_changed = b.changed
        moved, bal, removed = b.rebalance(seed=ns.seed)
        if moved == 0 and not removed and not was_changed and not ns.force:
            out("No partitions could be reassigned; the builder is left as it was (--force saves it anyway).")
            return EXIT_WARNING
        b.save(path)
        return _rebalance_result(b, moved, bal, removed, out)
    elif verb == "write_ring":
        if b.a2d is None:
            raise CliError("no partitions assigned yet: run rebalance first")
        b.write_ring(ring_path(path), ns.hash_path_prefix, ns.hash_path_suffix)
        out(f"Wrote {ring_path(path)}")
        return EXIT_OK
    elif verb == "dispersion":
        disp = report.dispersion(b, with_tiers=True)
        out(f"Dispersion is {disp.percent:.2f}, {disp.parts_at_risk} partitions have replicas crowding a tier")
        if ns.verbose or ns.search:
            out(f"{'Tier':<12} {'Max':>4}  Partitions with 0, 1, 2, ... replicas")
            for name, (limit, hist) in disp.tiers.items():
                if not ns.search or ns.search in name:
                    out(f"{name:<12} {limit:>4}  {' '.join(str(h) for h in hist)}")
        return EXIT_OK if disp.percent == 0 else EXIT_WARNING
    elif verb == "validate":
        report.validate(b)
        out("Ring is valid.")
        return EXIT_OK
    elif verb == "search":
        if ns.path:
            _search_path(b.get_ring(ns.hash_path_prefix or "", ns.hash_path_suffix or ""), ns.path, out)
            return EXIT_OK
        if not ns.value:
            raise CliError("search needs a search value or --path")
        found = _search(b, ns.value)
        if not found:
            out("No matching devices found")
            return EXIT_ERROR
        out("Devices:   id region zone  ip address:port  name weight meta")
        for d in found:
            out(f"{d.id:>13} {d.region:>6} {d.zone:>4} {d.ip + ':' + str(d.port):>16} {d.device:>5} "
                f"{d.weight:>6.2f} {d.meta}")
        return EXIT_OK
    elif verb == "set_replicas":
        b.set_replicas(ns.replicas)
        out(f"The replica count is now {b.replicas:.6f}.\nThe change will take effect after the next rebalance.")
    elif verb == "set_min_part_hours":
        b.set_min_part_hours(ns.hours)
        out(f"The minimum number of hours before a partition can be reassigned is now set to {ns.hours}")
    elif verb == "set_overload":
        text = ns.overload.strip()
        try:
            overload = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise CliError(f"invalid overload {ns.overload!r}") from None
        b.set_overload(overload)
        out(f"The overload factor is now {overload * 100:.2f}% ({overload:.6f})")
    elif verb == "pretend_min_part_hours_passed":
        b.pretend_min_part_hours_passed()
    b.save(path)
    return EXIT_OK


def main(argv: list[str], out: Callable[[str], None] = print) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        out("usage: tinystack ring <builder-file> [" + " | ".join(VERBS) + "] ...\n"
            "With no verb, describes the builder. Each verb takes --help.")
        return EXIT_OK if argv else EXIT_ERROR
    path, verb, rest = Path(argv[0]), (argv[1] if len(argv) > 1 else ""), argv[2:]
    try:
        if not verb:
            if path.suffix == ".ring":
                ring = Ring.load(path)
                out(f"{path}: {ring.partition_count} partitions, {ring.replica_count:f} replicas, "
                    f"{len([d for d in ring.devs if d])} devices, version {ring.version}")
                return EXIT_OK
            describe(_load(path), path.name, out)
            return EXIT_OK
        if verb not in VERBS:
            raise CliError(f"unknown verb {verb!r}; one of: {', '.join(VERBS)}")
        return run(path, verb, rest, out)
    except (CliError, RingBuilderError, RingFileError, DeviceSpecError, report.RingValidationError) as exc:
        print(f"tinystack ring: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_ERROR
