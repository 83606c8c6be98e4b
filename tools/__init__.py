"""Developer tools that are not part of the collection (the local real cluster)."""
