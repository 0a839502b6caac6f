"""The dashboard: Horizon's sections and panels as server-rendered pages, a client of the public APIs only."""
