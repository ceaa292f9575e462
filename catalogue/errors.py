"""The catalogue's exception tree; :mod:`catalogue.ckan_api` turns each into CKAN's error envelope in one place.

    CatalogueError                      "Internal Server Error", 500
    ├── NotFound                        "Not Found Error", 404
    ├── NotAuthorized                   "Authorization Error", 403
    ├── ValidationFailed                "Validation Error", 409 (carries a field -> [messages] dict)
    ├── SearchQueryError                "Search Query Error", 400
    └── BadRequest                      400 with a bare JSON string, as CKAN answers unknown actions

Third-party errors (ckanapi, SQLAlchemy) are translated at the boundary with ``raise ... from exc``.

    >>> err = NotFound("Dataset not found: air")
    >>> (err.ckan_type, err.status)
    ('Not Found Error', 404)
"""

from __future__ import annotations

from typing import ClassVar


class CatalogueError(Exception):
    """Base of every catalogue failure."""

    ckan_type: ClassVar[str] = "Internal Server Error"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(CatalogueError):
    ckan_type = "Not Found Error"
    status = 404


class NotAuthorized(CatalogueError):
    ckan_type = "Authorization Error"
    status = 403


class ValidationFailed(CatalogueError):
    """Invalid input; ``fields`` maps each offending key to its messages, as CKAN's ``Validation Error``."""

    ckan_type = "Validation Error"
    status = 409

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in fields.items()))
        self.fields = fields


class SearchQueryError(CatalogueError):
    ckan_type = "Search Query Error"
    status = 400


class BadRequest(CatalogueError):
    """Answered as CKAN does: status 400 and a bare JSON string, no envelope."""

    ckan_type = "Bad request"
    status = 400


class HarvestError(CatalogueError):
    """A remote catalogue could not be read or written."""
