"""The image service: Glance's v2 API over pluggable stores (filesystem by default)."""
