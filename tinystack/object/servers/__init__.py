"""The storage servers (account, container, object) of one storage node, each an aiohttp app on a port of its own,
speaking Swift's backend protocol: ``/<device>/<partition>/<account>[/<container>[/<object>]]`` with X-Timestamp."""
