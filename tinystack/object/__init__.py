"""Object storage (Swift's design): rings, account/container/object servers over HTTP, and the proxy on port 8080.
docs/object-storage.md describes the layout, the backend protocol and the proxy's middleware pipeline."""
