"""Qala: an interoperability hub for smart cities. This package holds the ``qala`` command line."""

__version__ = "0.1.0"
