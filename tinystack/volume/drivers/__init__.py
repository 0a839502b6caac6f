"""Volume drivers: what the volume agent asks of a storage backend (``base``), raw files (``file``), in memory (``fake``)."""
