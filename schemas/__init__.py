"""Qala's canonical data models: versioned JSON Schema 2020-12 and the registry that validates against them.

>>> from schemas import SchemaRegistry
>>> registry = SchemaRegistry.load()
>>> registry.get("ServiceRequest").collection
'service-requests'
"""

from schemas.cities import City, CityRegistry
from schemas.compat import CompatReport, check_compatibility
from schemas.errors import EntityInvalid, SchemaError, SchemaLoadError, UnknownCity, UnknownType, UnknownVersion
from schemas.registry import SchemaRegistry, SchemaVersion, collection_name
from schemas.validation import Issue

__all__ = [
    "City",
    "CityRegistry",
    "CompatReport",
    "EntityInvalid",
    "Issue",
    "SchemaError",
    "SchemaLoadError",
    "SchemaRegistry",
    "SchemaVersion",
    "UnknownCity",
    "UnknownType",
    "UnknownVersion",
    "check_compatibility",
    "collection_name",
]
