"""Qala adapters."""
