"""Turn a schema that refers to the shared definitions into a self-contained document.

Source schemas refer to shared definitions by absolute URI
(``https://schemas.qala.kz/common/1.0.0/geo.json#/$defs/Point``). Validators, the OpenAPI mandate and vendors
want one document with no network look-ups, so every external reference is rewritten to a local one and the
definition it names is copied in, transitively. The prefix of the local reference is the caller's choice:
``#/$defs/`` inside a schema, ``#/components/schemas/`` inside an OpenAPI document.

    >>> defs = {"https://x/c.json#/$defs/A": {"type": "string"}}
    >>> inline_refs({"properties": {"a": {"$ref": "https://x/c.json#/$defs/A"}}}, defs, "#/$defs/")
    ({'properties': {'a': {'$ref': '#/$defs/A'}}}, {'A': {'type': 'string'}})
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from schemas.errors import SchemaLoadError

JsonObject = dict[str, Any]


def definition_name(ref: str) -> str:
    """The local name of a shared definition: the last segment of its JSON pointer."""
    return ref.rsplit("/", 1)[-1]


def inline_refs(
    schema: JsonObject, shared: Mapping[str, JsonObject], prefix: str
) -> tuple[JsonObject, dict[str, JsonObject]]:
    """Rewrite external ``$ref``s in ``schema`` to ``prefix + name``.

    Returns the rewritten schema and the definitions it needs (themselves rewritten), keyed by local name.
    Raises SchemaLoadError for a reference that ``shared`` does not hold.
    """
    needed: dict[str, JsonObject] = {}
    pending: list[str] = []

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: rewrite(value) for key, value in node.items()}
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                if ref not in shared:
                    raise SchemaLoadError(f"unresolvable $ref {ref!r}")
                name = definition_name(ref)
                if name not in needed:
                    needed[name] = {}
                    pending.append(ref)
                out["$ref"] = prefix + name
            return out
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    result = rewrite(copy.deepcopy(schema))
    while pending:
        ref = pending.pop()
        needed[definition_name(ref)] = rewrite(shared[ref])
    return result, needed
