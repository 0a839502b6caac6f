"""Placement: resource providers, inventories, allocations, traits and allocation candidates (API 1.x)."""
