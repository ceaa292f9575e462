"""Facades that speak the field's standards over the hub's canonical store: Open311 GeoReport v2 (and NGSI-LD).

Each facade is a router that translates a standard's requests into the exchange API's own operations, with the
same clients, scopes, cities, redaction and audit; nothing is stored twice.
"""
