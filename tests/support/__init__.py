"""Shared test support: cluster fixtures, Argo CD object builders, failure helpers."""
