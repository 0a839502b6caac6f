"""Virt drivers for the compute agent: ``qemu`` (real, the default) and ``fake`` (in memory, tests only)."""
