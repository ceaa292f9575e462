"""Qala gateway."""
