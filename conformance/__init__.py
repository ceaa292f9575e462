"""Qala conformance."""
