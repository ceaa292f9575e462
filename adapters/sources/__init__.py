"""Built-in adapters, one module per kind of legacy source."""
