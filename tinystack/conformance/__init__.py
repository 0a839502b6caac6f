"""Conformance harness: run OpenStack's Tempest against a live cloud and report how far it is from certified."""
