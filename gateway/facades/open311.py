"""Open311 GeoReport v2 at ``/open311/v2/``, served from the hub's ServiceType and ServiceRequest entities.

311 apps and FixMyStreet-style reporting tools speak GeoReport v2; this facade lets them read and file requests
without knowing the canonical API. ``jurisdiction_id`` is the city code. Every response comes as JSON or XML
(``.json`` / ``.xml``); errors are the spec's list of ``{code, description}`` with 400, 403 or 404.

Who may do what is the exchange API's rule, applied to the same clients:

* ``api_key`` is an access token of an OAuth client of the hub (``POST /oauth/token``); an ``Authorization:
  Bearer`` header works too. Filing a request needs ``service-requests:write`` and the jurisdiction among the
  client's cities; the request is validated, stored, audited and in the change feed like any other write.
* Reading needs no key, as the spec says, and then shows what the open-data catalogue shows of a request: no
  personal fields, the location rounded to about 100 m and no street address. A key with ``service-requests:read``
  gives exact locations and addresses; personal fields never appear in a GeoReport record.

    curl 'http://127.0.0.1:8000/open311/v2/services.json?jurisdiction_id=astana'
    curl 'http://127.0.0.1:8000/open311/v2/requests.json?jurisdiction_id=astana&status=open&start_date=2024-01-01T00:00:00Z'
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gateway.auth import Caller, authenticate, bearer_token
from gateway.errors import GatewayError
from gateway.exchange import Exchange, audit_record, get_exchange, mark_audited, public_view, publisher_of, validated
from gateway.services import Services, get_services
from gateway.store.entities import ListQuery
from schemas import CityRegistry, SchemaVersion

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])

DEFAULT_WINDOW = timedelta(days=90)
MAX_RECORDS = 1000
MAX_DESCRIPTION = 4000
COARSE_DECIMALS = 3  # about 100 m, as the catalogue publishes service-request locations
LANGUAGES = ("ru", "kk", "en")
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}


class Open311Error(Exception):
    """One GeoReport error: an HTTP status and the ``{code, description}`` the spec puts in its error list."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _from_gateway(error: GatewayError) -> Open311Error:
    """The hub's errors in GeoReport's terms: a missing or bad key is 403, as the spec says."""
    status = error.status if error.status in (400, 403, 404) else 403 if error.status == 401 else 400
    return Open311Error(status, str(error))


# -- formats ----------------------------------------------------------------------------------------------------


def _split_format(name: str) -> tuple[str, str]:
    stem, dot, fmt = name.rpartition(".")
    if not dot or fmt not in FORMATS:
        raise Open311Error(404, f"{name}: ask for .json or .xml")
    return stem, fmt


def _xml(root: str, item: str, records: list[dict[str, Any]]) -> bytes:
    top = ET.Element(root)
    for record in records:
        element = ET.SubElement(top, item)
        for key, value in record.items():
            _xml_value(ET.SubElement(element, key), value)
    return _document(top)


def _document(top: ET.Element) -> bytes:
    body: bytes = ET.tostring(top, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def _xml_value(element: ET.Element, value: Any) -> None:
    if isinstance(value, list):
        singular = {"attributes": "attribute", "values": "value", "keywords": "keyword"}.get(element.tag, "item")
        for entry in value:
            _xml_value(ET.SubElement(element, singular), entry)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _xml_value(ET.SubElement(element, key), inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def _respond(fmt: str, root: str, item: str, records: list[dict[str, Any]], status: int = 200) -> Response:
    if fmt == "xml":
        return Response(_xml(root, item, records), status_code=status, media_type=FORMATS["xml"])
    return JSONResponse(records, status_code=status)


def _error_response(fmt: str, error: Open311Error) -> Response:
    return _respond(fmt, "errors", "error", [{"code": error.status, "description": error.description}], error.status)


# -- mapping ----------------------------------------------------------------------------------------------------


def _text(value: Any, language: str) -> str | None:
    if isinstance(value, dict):
        for candidate in (language, *LANGUAGES):
            if value.get(candidate):
                return str(value[candidate])
        return None
    return None if value is None else str(value)


def service_record(entity: Mapping[str, Any], language: str) -> dict[str, Any]:
    """A ServiceType as an Open311 service (``services.json``)."""
    return {
        "service_code": entity["serviceCode"],
        "service_name": _text(entity.get("name"), language),
        "description": _text(entity.get("description"), language),
        "metadata": bool(entity.get("metadata")),
        "type": entity.get("serviceType", "realtime"),
        "keywords": ",".join(entity.get("keywords", [])),
        "group": entity.get("group"),
    }


def service_definition(entity: Mapping[str, Any], language: str) -> dict[str, Any]:
    """A ServiceType's attributes as an Open311 service definition (``services/{code}.json``)."""
    attributes = []
    for attribute in sorted(entity.get("attributes", []), key=lambda a: a.get("order", 0)):
        record: dict[str, Any] = {
            "variable": attribute["variable"],
            "code": attribute["code"],
            "datatype": attribute["datatype"],
            "required": attribute["required"],
            "datatype_description": _text(attribute.get("datatypeDescription"), language),
            "order": attribute["order"],
            "description": _text(attribute.get("description"), language),
        }
        if "values" in attribute:
            record["values"] = [{"key": v["key"], "name": _text(v["name"], language)} for v in attribute["values"]]
        attributes.append(record)
    return {"service_code": entity["serviceCode"], "attributes": attributes}


def request_record(entity: Mapping[str, Any], language: str, exact: bool) -> dict[str, Any]:
    """A ServiceRequest as an Open311 request; ``exact`` False gives the open-data view of its place."""
    local_id = str(entity["id"]).rsplit(":", 1)[-1]
    coordinates = (entity.get("location") or {}).get("coordinates")
    lat = long = None
    if coordinates:
        long, lat = coordinates[0], coordinates[1]
        if not exact:
            long, lat = round(long, COARSE_DECIMALS), round(lat, COARSE_DECIMALS)
    address = entity.get("address") or {}
    return {
        "service_request_id": entity.get("serviceRequestId", local_id),
        "status": entity["status"],
        "status_notes": entity.get("statusNotes"),
        "service_name": _text(entity.get("serviceName"), language),
        "service_code": entity["serviceCode"],
        "description": entity.get("description"),
        "agency_responsible": entity.get("agencyResponsible"),
        "service_notice": entity.get("serviceNotice"),
        "requested_datetime": entity.get("dateRequested"),
        "updated_datetime": entity.get("dateClosed") or entity.get("dateUpdated") or entity.get("dateModified"),
        "expected_datetime": entity.get("dateExpected"),
        "address": address.get("streetAddress") if exact else None,
        "address_id": None,
        "zipcode": address.get("postalCode") if exact else None,
        "lat": lat,
        "long": long,
        "media_url": entity.get("mediaUrl"),
    }


def new_request(form: Mapping[str, str], city: str, now: datetime) -> dict[str, Any]:
    """The ServiceRequest an Open311 POST files; the schema decides whether it is acceptable."""
    local_id = f"O311-{secrets.token_hex(6)}"
    stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:ServiceRequest:{city}:{local_id}",
        "type": "ServiceRequest",
        "city": city,
        "dateModified": stamp,
        "dateRequested": stamp,
        "serviceRequestId": local_id,
        "serviceCode": form.get("service_code", ""),
        "status": "open",
        "statusDetail": "received",
        "channel": "app",
        "source": "Open311 GeoReport v2",
    }
    if form.get("lat") or form.get("long"):
        try:
            entity["location"] = {"type": "Point", "coordinates": [float(form["long"]), float(form["lat"])]}
        except (KeyError, ValueError):
            raise Open311Error(400, "lat and long must both be decimal degrees (WGS 84)") from None
    if form.get("address_string"):
        entity["address"] = {"streetAddress": form["address_string"]}
    if "location" not in entity and "address" not in entity and not form.get("address_id"):
        raise Open311Error(400, "a location is required: lat and long, or address_string")
    description = form.get("description", "")
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description is longer than {MAX_DESCRIPTION} characters")
    if description:
        entity["description"] = description
    name = " ".join(part for part in (form.get("first_name"), form.get("last_name")) if part)
    for key, value in (
        ("contactName", name),
        ("contactPhone", form.get("phone")),
        ("contactEmail", form.get("email")),
        ("mediaUrl", form.get("media_url")),
    ):
        if value:
            entity[key] = value
    return entity


# -- the hub's side ---------------------------------------------------------------------------------------------


async def _caller(request: Request, services: Services, api_key: str | None) -> Caller | None:
    """The client behind ``api_key`` (or a bearer header), through the API's own verifier and rate limit; None
    for an anonymous reader."""
    if api_key is None and request.headers.get("authorization") is None:
        return None
    try:
        return await authenticate(request, Response(), services, api_key or bearer_token(request))
    except GatewayError as error:
        raise _from_gateway(error) from error


def _city(params: Mapping[str, str]) -> str:
    city = params.get("jurisdiction_id")
    if not city:
        raise Open311Error(400, "jurisdiction_id is required: the city code (astana, almaty, ...)")
    if not CityRegistry.load().is_known(city):
        raise Open311Error(404, f"unknown jurisdiction_id {city!r}")
    return city


async def _entities(exchange: Exchange, collection: str, query: ListQuery) -> AsyncIterator[dict[str, Any]]:
    """Every entity of ``collection`` matching ``query``, page by page through the store."""
    while True:
        page, last = await exchange.store.list_page(collection, query)
        for stored in page:
            if stored.payload is not None:
                yield stored.payload
        if last is None:
            return
        query = ListQuery(limit=query.limit, after=last, city=query.city, equals=query.equals)


def _instant(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be an ISO 8601 date-time with offset, not {raw!r}") from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"{name} {raw!r} has no offset; add Z or +05:00")
    return moment


def _positive(params: Mapping[str, str], name: str, default: int, ceiling: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= ceiling:
        raise Open311Error(400, f"{name} must be a whole number from 1 to {ceiling}, not {raw!r}")
    return int(raw)


async def _search(exchange: Exchange, city: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """``GET requests``: ids (which override the rest), or service code, status and the requested-time window."""
    if params.get("service_request_id"):
        wanted = [part.strip() for part in params["service_request_id"].split(",") if part.strip()]
        found = []
        for value in wanted[:MAX_RECORDS]:
            query = ListQuery(limit=10, city=city, equals={"serviceRequestId": value})
            found += [entity async for entity in _entities(exchange, "service-requests", query)]
        return found
    equals: dict[str, str | int | float | bool] = {}
    if params.get("service_code"):
        equals["serviceCode"] = params["service_code"]
    if params.get("status"):
        if params["status"] not in ("open", "closed"):
            raise Open311Error(400, f"status must be open or closed, not {params['status']!r}")
        equals["status"] = params["status"]
    start, end = _instant(params, "start_date"), _instant(params, "end_date")
    if start is None:
        start = (end or datetime.now(UTC)) - DEFAULT_WINDOW
    page_size = _positive(params, "page_size", MAX_RECORDS, MAX_RECORDS)
    page = _positive(params, "page", 1, 1_000_000)
    matches: list[dict[str, Any]] = []
    async for entity in _entities(exchange, "service-requests", ListQuery(limit=1000, city=city, equals=equals)):
        requested = datetime.fromisoformat(str(entity["dateRequested"]).replace("Z", "+00:00"))
        if requested >= start and (end is None or requested <= end):
            matches.append(entity)
    matches.sort(key=lambda e: (datetime.fromisoformat(str(e["dateRequested"]).replace("Z", "+00:00")), e["id"]))
    return matches[(page - 1) * page_size : page * page_size]


def _language(params: Mapping[str, str]) -> str:
    language = params.get("locale", "ru")[:2]
    return language if language in LANGUAGES else "ru"


# -- routes -----------------------------------------------------------------------------------------------------


async def _handle(request: Request, name: str, kind: str) -> Response:
    fmt = "json"
    try:
        stem, fmt = _split_format(name)
        services = await get_services(request)
        exchange = await get_exchange(request, services)
        params = dict(request.query_params)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.form()).items()})
        if kind == "discovery" and stem == "discovery":
            return _respond(fmt, "discovery", "endpoint", [_discovery(request, services)])
        city = _city(params)
        language = _language(params)
        caller = await _caller(request, services, params.get("api_key"))
        if kind == "services":
            return await _services(exchange, city, stem, language, fmt)
        if kind == "requests" and request.method == "POST":
            return await _file(request, exchange, caller, city, params, fmt=fmt)
        if kind == "tokens":
            return await _token(exchange, city, stem, fmt)
        if kind == "requests" and stem != "requests":
            raise Open311Error(404, f"no resource {name}")
        schema = exchange.registry.get("ServiceRequest")
        exact = caller is not None and caller.has_scope("service-requests:read")
        if kind == "request":
            entities = await _search(exchange, city, {"service_request_id": stem})
            if not entities:
                raise Open311Error(404, f"no service request {stem} in {city}")
        else:
            entities = await _search(exchange, city, params)
        records = [request_record(_view(schema, e, caller), language, exact) for e in entities]
        return _respond(fmt, "service_requests", "request", records)
    except Open311Error as error:
        return _error_response(fmt, error)


def _view(schema: SchemaVersion, entity: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
    return schema.redact(entity) if caller is None else public_view(schema, entity, caller)


def _discovery(request: Request, services: Services) -> dict[str, Any]:
    base = f"{services.settings.issuer}/open311/v2"
    return {
        "changeset": "2024-01-01T00:00:00Z",
        "contact": f"{services.settings.issuer}/docs",
        "key_service": f"{services.settings.issuer}/oauth/token",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": base,
                "changeset": "2024-01-01T00:00:00Z",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }


async def _services(exchange: Exchange, city: str, stem: str, language: str, fmt: str) -> Response:
    if stem == "services":
        query = ListQuery(limit=1000, city=city)
        types = [e async for e in _entities(exchange, "service-types", query)]
        return _respond(fmt, "services", "service", [service_record(e, language) for e in types])
    code = stem.removeprefix("services/")
    query = ListQuery(limit=10, city=city, equals={"serviceCode": code})
    found = [e async for e in _entities(exchange, "service-types", query)]
    if not found:
        raise Open311Error(404, f"no service {code} in {city}")
    definition = service_definition(found[0], language)
    if fmt == "xml":
        return Response(_definition_xml(definition), media_type=FORMATS["xml"])
    return JSONResponse(definition)


def _definition_xml(definition: dict[str, Any]) -> bytes:
    top = ET.Element("service_definition")
    for key, value in definition.items():
        _xml_value(ET.SubElement(top, key), value)
    return _document(top)


async def _file(
    request: Request, exchange: Exchange, caller: Caller | None, city: str, form: Mapping[str, str], *, fmt: str
) -> Response:
    if caller is None:
        raise Open311Error(403, "api_key is required to file a request: an access token from /oauth/token")
    if not caller.has_scope("service-requests:write"):
        raise Open311Error(403, "this api_key's client lacks the service-requests:write scope")
    if not caller.may_touch(city):
        raise Open311Error(403, f"this api_key's client may not file requests in {city}")
    known = ListQuery(limit=2, city=city, equals={"serviceCode": form.get("service_code", "")})
    types = [e async for e in _entities(exchange, "service-types", known)]
    if not types:
        raise Open311Error(400, f"service_code {form.get('service_code')!r} is not a service of {city}")
    entity = new_request(form, city, datetime.now(UTC))
    schema = exchange.registry.get("ServiceRequest")
    try:
        validated(schema, entity)
    except GatewayError as error:
        raise _from_gateway(error) from error
    record = audit_record(request, caller, "entity.created", resource=entity["id"], status=201)
    await exchange.store.create(entity, schema, publisher_of(caller), record)
    mark_audited(request)
    answer = {"service_request_id": entity["serviceRequestId"], "service_notice": None, "account_id": None}
    return _respond(fmt, "service_requests", "request", [answer], 201)


async def _token(exchange: Exchange, city: str, stem: str, fmt: str) -> Response:
    """Requests are filed at once, so a token is the request id it stands for."""
    token = stem.removeprefix("tokens/")
    if not await _search(exchange, city, {"service_request_id": token}):
        raise Open311Error(404, f"no request for token {token}")
    return _respond(fmt, "service_requests", "request", [{"service_request_id": token, "token": token}])


@router.get("/{name}", include_in_schema=False)
async def top_level(request: Request, name: str) -> Response:
    kind = "services" if name.startswith("services.") else "discovery" if name.startswith("discovery.") else "requests"
    return await _handle(request, name, kind)


@router.post("/{name}", include_in_schema=False)
async def file_request(request: Request, name: str) -> Response:
    if not name.startswith("requests."):
        return _error_response("json", Open311Error(404, f"POST {name}: only requests.json or requests.xml"))
    return await _handle(request, name, "requests")


@router.get("/services/{name}", include_in_schema=False)
async def one_service(request: Request, name: str) -> Response:
    return await _handle(request, f"services/{name}", "services")


@router.get("/requests/{name}", include_in_schema=False)
async def one_request(request: Request, name: str) -> Response:
    return await _handle(request, name, "request")


@router.get("/tokens/{name}", include_in_schema=False)
async def one_token(request: Request, name: str) -> Response:
    return await _handle(request, f"tokens/{name}", "tokens")
