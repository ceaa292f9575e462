"""The reference module's FastAPI app: ``create_app(issuer_url, jwks_url, audience)``.

``faults`` switches on one defect at a time; the conformance suite's own tests use them to prove that each
requirement is really tested. A real module has none.

    app = create_app("http://127.0.0.1:8765", "http://127.0.0.1:8765/oauth/jwks", "http://127.0.0.1:9000")
    app = create_app(..., faults={Fault.IGNORE_EXPIRY})          # fails QM-AUTH-002
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import os
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Header, Request
from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse, Response

from examples.vendor_module import problems
from examples.vendor_module.auth import Access, TokenVerifier, unauthorized
from examples.vendor_module.problems import Problem
from examples.vendor_module.store import JsonObject, Query, Store, etag_of, parse_instant
from openapi.mandate import MAX_LIMIT, mandate_document
from schemas import SchemaRegistry

IfMatchHeader = Annotated[str | None, Header(alias="If-Match")]


class Fault(StrEnum):
    IGNORE_EXPIRY = "ignore-expiry"
    IGNORE_SCOPE = "ignore-scope"
    DROP_REQUIRED_FIELD = "drop-required-field"
    DUPLICATE_ACROSS_PAGES = "duplicate-across-pages"
    IGNORE_UPDATED_SINCE = "ignore-updated-since"
    HTML_ERRORS = "html-errors"
    LEAK_PERSONAL = "leak-personal"
    CRASH_ON_BAD_INPUT = "crash-on-bad-input"
    IGNORE_IF_MATCH = "ignore-if-match"
    ACCEPT_ALG_NONE = "accept-alg-none"
    # the weakness classes of suite 1.0 (issue 13): each a few lines a careless vendor really ships
    OPTIONAL_EXP = "optional-exp"
    TRUST_HEADER_JWK = "trust-header-jwk"
    HS256_PUBLIC_KEY = "hs256-public-key"
    SCOPE_ON_POST_ONLY = "scope-on-post-only"
    TRUST_HOME_CITY = "trust-home-city"
    LEAK_ON_LATER_PAGES = "leak-on-later-pages"
    IGNORE_CITY_FILTER = "ignore-city-filter"
    UPDATED_SINCE_AS_TEXT = "updated-since-as-text"
    FILTERS_LOST_ON_NEXT = "filters-lost-on-next"
    LIMIT_IGNORED_ON_LATER_PAGES = "limit-ignored-on-later-pages"
    LAST_PAGE_WITHOUT_NEXT = "last-page-without-next"
    REQUIRED_ONLY_VALIDATION = "required-only-validation"
    ETAG_OF_ID = "etag-of-id"
    IF_MATCH_PUT_ONLY = "if-match-put-only"
    DELETED_STILL_LISTED = "deleted-still-listed"
    PUT_TRUSTS_BODY_ID = "put-trusts-body-id"
    CRASH_ON_NULL_BODY = "crash-on-null-body"
    PROBLEM_WITHOUT_STATUS = "problem-without-status"
    LOOSENED_SCHEMA = "loosened-schema"


HOME_CITY = "astana"
"""The city the ``trust-home-city`` defect lets every client write."""
TOKEN_DEFECTS = frozenset({Fault.OPTIONAL_EXP, Fault.TRUST_HEADER_JWK, Fault.HS256_PUBLIC_KEY})


def _cursor(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _after(cursor: str, *, crash: bool) -> str:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return str(value["after"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        if crash:
            raise Problem(500, "internal", "the module failed to handle this request") from None
        raise Problem(400, "bad-cursor", "the cursor is not one this module issued") from None


class ReferenceModule:
    """The module's behaviour, apart from HTTP routing: authorisation, validation, redaction, listing."""

    def __init__(  # noqa: PLR0917 -- the module's whole configuration
        self,
        issuer_url: str,
        jwks_url: str,
        audience: str,
        collection: str,
        faults: frozenset[Fault],
        stamp_modified: bool = False,
    ):
        self.collection, self.faults, self.stamp_modified = collection, faults, stamp_modified
        self.profile = SchemaRegistry.load().get(collection)
        self.document = mandate_document(self.profile)
        self.verifier = TokenVerifier(
            issuer_url,
            jwks_url,
            audience,
            accept_none=Fault.ACCEPT_ALG_NONE in faults,
            ignore_expiry=Fault.IGNORE_EXPIRY in faults,
            defects=frozenset(str(fault) for fault in faults & TOKEN_DEFECTS),
        )
        self.store = Store()
        self.filterable = [name for name in self.profile.filterable_fields if name != "city"]

    async def caller(self, request: Request, scope: str) -> Access:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise unauthorized("this call needs a bearer token", error=None)
        access = await self.verifier.verify(header[7:].strip(), request.app.state.http)
        needed = f"{self.collection}:{scope}"
        lax = Fault.SCOPE_ON_POST_ONLY in self.faults and request.method in ("PUT", "DELETE")
        if needed not in access.scopes and Fault.IGNORE_SCOPE not in self.faults and not lax:
            raise Problem(403, "insufficient-scope", f"this call needs the scope {needed!r}")
        return access

    def shown(self, entity: JsonObject, access: Access, *, later_page: bool = False) -> JsonObject:
        out = dict(entity)
        leak = Fault.LEAK_PERSONAL in self.faults or (later_page and Fault.LEAK_ON_LATER_PAGES in self.faults)
        if f"{self.collection}:read-personal" not in access.scopes and not leak:
            out = self.profile.redact(out)
        if Fault.DROP_REQUIRED_FIELD in self.faults:
            out.pop(self.profile.required[-1], None)
        return out

    async def body_of(self, request: Request) -> JsonObject:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise Problem(415, "unsupported-media-type", "the body must be application/json")
        try:
            entity = json.loads(await request.body())
        except ValueError:
            raise Problem(400, "malformed-json", "the body is not valid JSON") from None
        issues = self.profile.explain(entity) if not self.profile.is_valid(entity) else []
        if Fault.REQUIRED_ONLY_VALIDATION in self.faults and isinstance(entity, dict):
            issues = [issue for issue in issues if issue.keyword == "required"]
        if issues or not isinstance(entity, dict):
            errors = [{"pointer": i.pointer, "keyword": i.keyword, "message": i.message} for i in issues]
            raise Problem(422, "validation-failed", f"not a valid {self.profile.type_name}", errors=errors)
        if self.stamp_modified:
            entity["dateModified"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return entity

    def check_city(self, entity: JsonObject, access: Access) -> None:
        home = Fault.TRUST_HOME_CITY in self.faults and entity["city"] == HOME_CITY
        if entity["city"] not in access.cities and not home:
            raise Problem(403, "city-not-allowed", f"this client may not write entities of {entity['city']!r}")

    def check_if_match(self, current: JsonObject | None, if_match: str | None, method: str = "PUT") -> None:
        if if_match is None or Fault.IGNORE_IF_MATCH in self.faults:
            return
        if Fault.IF_MATCH_PUT_ONLY in self.faults and method == "DELETE":
            return
        if current is None or (if_match.strip() != "*" and self.etag(current) not in if_match):
            raise Problem(412, "precondition-failed", "If-Match does not match the current ETag")

    def etag(self, entity: JsonObject) -> str:
        return etag_of({"id": entity["id"]} if Fault.ETAG_OF_ID in self.faults else entity)

    def entity_response(self, entity: JsonObject, access: Access, status: int, request: Request) -> Response:
        headers = {"ETag": self.etag(entity)}
        if status == 201:
            path = f"/{self.collection}/{quote(entity['id'], safe='')}"
            headers["Location"] = str(request.base_url).rstrip("/") + path
        return JSONResponse(self.shown(entity, access), status_code=status, headers=headers)

    def query(self, params: QueryParams) -> Query:
        """The list query, refusing malformed parameters with 400 (or, as a defect, crashing)."""
        query = Query(equals={name: params[name] for name in self.filterable if name in params})
        query.city = params.get("city") if Fault.IGNORE_CITY_FILTER not in self.faults else None
        query.as_text = Fault.UPDATED_SINCE_AS_TEXT in self.faults
        raw_limit = params.get("limit", "100")
        # ASCII digits only: "--5" and "²" pass str.isdigit() once stripped, and int() then raises
        if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise Problem(400, "bad-limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
        query.limit = int(raw_limit)
        if "cursor" in params:
            query.after = _after(params["cursor"], crash=Fault.CRASH_ON_BAD_INPUT in self.faults)
        if "updatedSince" in params and Fault.IGNORE_UPDATED_SINCE not in self.faults:
            query.updated_since_text = params["updatedSince"]
            query.updated_since = parse_instant(params["updatedSince"])
            if query.updated_since is None:
                raise Problem(400, "bad-updated-since", "updatedSince must be an RFC 3339 date-time with an offset")
        if "bbox" in params:
            try:
                box = [float(part) for part in params["bbox"].split(",")]
            except ValueError:
                box = []
            if len(box) != 4:
                raise Problem(400, "bad-bbox", "bbox must be minLon,minLat,maxLon,maxLat")
            query.bbox = (box[0], box[1], box[2], box[3])
        return query

    def page(self, request: Request, access: Access) -> JsonObject:
        query = self.query(request.query_params)
        later = query.after is not None
        if later and Fault.LIMIT_IGNORED_ON_LATER_PAGES in self.faults:
            query.limit *= 2
        items, after = self.store.page(query)
        if after is not None and Fault.DUPLICATE_ACROSS_PAGES in self.faults and len(items) > 1:
            after = items[-2]["id"]
        next_link = None
        if after is not None:
            lost = self.filterable if Fault.FILTERS_LOST_ON_NEXT in self.faults else []
            next_params = {k: v for k, v in request.query_params.items() if k != "cursor" and k not in lost}
            next_link = str(request.url.replace_query_params(**next_params, cursor=_cursor(after)))
        page = {"items": [self.shown(item, access, later_page=later) for item in items], "next": next_link}
        if next_link is None and Fault.LAST_PAGE_WITHOUT_NEXT in self.faults:
            del page["next"]
        return page

    def published(self, request: Request, title: str, version: str) -> JsonObject:
        """The module's OpenAPI document: the mandate's paths and schemas under the module's own name."""
        document = copy.deepcopy(self.document)
        document["info"] = {**document["info"], "title": title, "version": version}
        document["servers"] = [{"url": str(request.base_url).rstrip("/")}]
        if Fault.LOOSENED_SCHEMA in self.faults:
            schema = document["components"]["schemas"][self.profile.type_name]
            schema.pop("additionalProperties", None)
        return document


def create_app(
    issuer_url: str,
    jwks_url: str,
    audience: str,
    *,
    collection: str = "service-requests",
    faults: Collection[Fault] = (),
    stamp_modified: bool = False,
) -> FastAPI:
    """A module serving ``collection`` that trusts tokens of ``issuer_url`` addressed to ``audience``.

    ``stamp_modified`` sets ``dateModified`` to the time of each write, as many real modules do (legal).
    """
    module = ReferenceModule(issuer_url, jwks_url, audience, collection, frozenset(faults), stamp_modified)
    store = module.store

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=5.0) as http:
            app.state.http = http
            yield

    app = FastAPI(title=f"Reference vendor module: {collection}", version="1.0.0", lifespan=lifespan, openapi_url=None)
    problems.install(
        app, html=Fault.HTML_ERRORS in module.faults, drop_status=Fault.PROBLEM_WITHOUT_STATUS in module.faults
    )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(module.published(request, app.title, app.version))

    @app.get(f"/{collection}")
    async def list_entities(request: Request) -> JSONResponse:
        access = await module.caller(request, "read")
        return JSONResponse(module.page(request, access))

    @app.post(f"/{collection}")
    async def create(request: Request) -> Response:
        access = await module.caller(request, "write")
        entity = await module.body_of(request)
        module.check_city(entity, access)
        if store.get(entity["id"]) is not None:
            raise Problem(409, "conflict", f"{entity['id']} exists already")
        store.put(entity)
        return module.entity_response(entity, access, 201, request)

    @app.get(f"/{collection}/{{entity_id:path}}")
    async def read(entity_id: str, request: Request) -> Response:
        access = await module.caller(request, "read")
        entity = store.get(entity_id)
        if entity is None:
            raise Problem(404, "not-found", f"no entity {entity_id!r}")
        return module.entity_response(entity, access, 200, request)

    @app.put(f"/{collection}/{{entity_id:path}}")
    async def upsert(entity_id: str, request: Request, if_match: IfMatchHeader = None) -> Response:
        access = await module.caller(request, "write")
        if Fault.CRASH_ON_NULL_BODY in module.faults and await request.body() == b"null":
            raise RuntimeError("NoneType object is not subscriptable")
        entity = await module.body_of(request)
        if Fault.PUT_TRUSTS_BODY_ID in module.faults:
            entity_id = entity["id"]
        if entity["id"] != entity_id:
            errors = [{"pointer": "/id", "keyword": "x-path-id", "message": "the id differs from the URL's"}]
            raise Problem(422, "validation-failed", "the body's id is not the URL's", errors=errors)
        module.check_city(entity, access)
        current = store.get(entity_id)
        module.check_if_match(current, if_match)
        store.put(entity)
        return module.entity_response(entity, access, 200 if current is not None else 201, request)

    @app.delete(f"/{collection}/{{entity_id:path}}")
    async def delete(entity_id: str, request: Request, if_match: IfMatchHeader = None) -> Response:
        access = await module.caller(request, "write")
        current = store.get(entity_id)
        if current is None:
            raise Problem(404, "not-found", f"no entity {entity_id!r}")
        module.check_city(current, access)
        module.check_if_match(current, if_match, "DELETE")
        store.delete(entity_id, keep_listed=Fault.DELETED_STILL_LISTED in module.faults)
        return Response(status_code=204)

    return app


def from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory``: ``VENDOR_ISSUER_URL``, ``VENDOR_JWKS_URL``, ``VENDOR_AUDIENCE``."""
    issuer = os.environ.get("VENDOR_ISSUER_URL", "http://127.0.0.1:8765").rstrip("/")
    jwks = os.environ.get("VENDOR_JWKS_URL", f"{issuer}/oauth/jwks")
    audience = os.environ.get("VENDOR_AUDIENCE", "http://127.0.0.1:9000")
    return create_app(issuer, jwks, audience, collection=os.environ.get("VENDOR_COLLECTION", "service-requests"))
