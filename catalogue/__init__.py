"""Qala catalogue."""
