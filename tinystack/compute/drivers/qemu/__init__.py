"""The real virt driver: QEMU processes detached from the agent, driven over QMP."""

from tinystack.compute.drivers.qemu.driver import QemuDriver

__all__ = ["QemuDriver"]
