"""Mechanisms every service shares. Imports no service."""
