"""Qala openapi."""
