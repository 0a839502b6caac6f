"""Placement settings, read from the ``[placement]`` section."""

from __future__ import annotations

from dataclasses import dataclass

from tinystack.config import Config

DEFAULTS: dict[str, str] = {
    # How often one write is retried after losing a generation race before it gives up with 409.
    "claim_retries": "20",
    # Shuffle allocation candidates instead of returning them in provider order (placement's option).
    "randomize_allocation_candidates": "false",
}


@dataclass(frozen=True)
class PlacementSettings:
    claim_retries: int
    randomize_allocation_candidates: bool


def load(config: Config) -> PlacementSettings:
    raw = {**DEFAULTS, **config.values.get("placement", {})}
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) in [placement]: {', '.join(sorted(unknown))}")
    retries = int(raw["claim_retries"])
    if retries < 1:
        raise ValueError("[placement] claim_retries must be at least 1")
    return PlacementSettings(retries, raw["randomize_allocation_candidates"].strip().lower() in ("1", "true", "yes", "on"))
