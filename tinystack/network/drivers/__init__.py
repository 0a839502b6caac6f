"""Network agent drivers: ``linux`` (namespaces, bridges, dnsmasq, iptables) and ``fake`` (in memory)."""
