"""Benchmarks of ecoeco.gitops against what users run instead (``make bench``)."""
