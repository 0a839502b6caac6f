"""Helpers of the Linux network driver: device names, ``ip``, dnsmasq, firewall and router rules."""
