"""Block storage: a Cinder v3 API over volume files on the nodes."""
