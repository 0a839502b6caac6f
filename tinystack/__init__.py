"""tinystack: an IaaS cloud that speaks the OpenStack APIs."""

__version__ = "0.1.0"
