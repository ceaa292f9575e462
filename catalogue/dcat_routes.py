"""The DCAT addresses, as ckanext-dcat publishes them, with read-only CORS.

GET /catalog.{ttl,jsonld,rdf,xml,n3}?page=&q=&fq=&modified_since=
GET /catalog                      (format from ``Accept``; Turtle when it names none)
GET /dataset/{name}.{ttl,jsonld,rdf,xml,n3}
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from catalogue.cors import OpenReadRoute, preflight
from catalogue.dcat import MEDIA, PER_PAGE, catalogue_graph, dataset_graph, negotiate
from catalogue.errors import NotFound
from catalogue.service import Catalogue


def _page(request: Request) -> int:
    try:
        page = int(request.query_params.get("page", "1"))
    except ValueError:
        raise HTTPException(400, "page must be a positive integer") from None
    if not 1 <= page <= 10**6:
        raise HTTPException(400, "page must be a positive integer")
    return page


def _since(request: Request) -> str:
    value = request.query_params.get("modified_since")
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, "modified_since must be an ISO 8601 date or date-time") from None
    return f"metadata_modified:[{moment.replace(tzinfo=None).isoformat()} TO *]"


async def catalog(request: Request, fmt: str) -> Response:
    catalogue: Catalogue = request.app.state.catalogue
    page = _page(request)
    fq = " ".join(part for part in (request.query_params.get("fq", ""), _since(request)) if part)
    found = await catalogue.package_search(
        {
            "q": request.query_params.get("q", ""),
            "fq": fq,
            "rows": PER_PAGE,
            "start": (page - 1) * PER_PAGE,
            "sort": "name asc",
        }
    )
    if page > 1 and not found["results"]:
        raise HTTPException(404, "Page not found")
    graph = catalogue_graph(
        catalogue.settings, found["results"], page=page, total=found["count"], page_url=f"/catalog.{fmt}"
    )
    rdf_format, media_type = MEDIA[fmt]
    return Response(graph.serialize(format=rdf_format), media_type=media_type, headers={"Vary": "Accept"})


async def dataset(request: Request, name: str, fmt: str) -> Response:
    catalogue: Catalogue = request.app.state.catalogue
    try:
        doc = await catalogue.package_show(name)
    except NotFound as exc:
        raise HTTPException(404, exc.message) from exc
    rdf_format, media_type = MEDIA[fmt]
    body = dataset_graph(catalogue.settings, doc).serialize(format=rdf_format)
    return Response(body, media_type=media_type, headers={"Vary": "Accept"})


def router() -> APIRouter:
    api = APIRouter(tags=["DCAT-AP"], route_class=OpenReadRoute)
    for fmt in MEDIA:

        async def one_catalog(request: Request, fmt: str = fmt) -> Response:
            return await catalog(request, fmt)

        async def one_dataset(request: Request, name: str, fmt: str = fmt) -> Response:
            return await dataset(request, name, fmt)

        api.add_api_route(f"/catalog.{fmt}", one_catalog, methods=["GET"], include_in_schema=False)
        api.add_api_route(f"/dataset/{{name}}.{fmt}", one_dataset, methods=["GET"], include_in_schema=False)
        api.add_api_route(f"/catalog.{fmt}", preflight, methods=["OPTIONS"], include_in_schema=False)
        api.add_api_route(f"/dataset/{{name}}.{fmt}", preflight, methods=["OPTIONS"], include_in_schema=False)

    async def negotiated(request: Request) -> Response:
        return await catalog(request, negotiate(request.headers.get("accept")) or "ttl")

    api.add_api_route("/catalog", negotiated, methods=["GET"], include_in_schema=False)
    return api
