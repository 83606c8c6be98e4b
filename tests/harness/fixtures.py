"""pytest fixtures for the local real cluster (filled in by the harness)."""
