"""The Swift proxy: ``/v1/<account>[/<container>[/<object>]]`` through the middleware pipeline (middleware/), then
the account, container and object controllers that speak HTTP to the storage servers the rings name."""
