"""Networking: the Neutron v2.0 API, its IPAM and policy rules, and the controller feeding network agents."""
