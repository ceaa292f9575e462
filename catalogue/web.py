"""Public pages: server-rendered Jinja2, no build step, in Kazakh, Russian or English.

The language comes from the ``qala_lang`` cookie (set by ``/lang/{code}``), else the browser's
``Accept-Language``, else Kazakh. Pages: ``/`` (search box, recently updated, themes), ``/dataset`` (results,
facets, paging), ``/dataset/{name}`` (metadata, freshness, lineage, preview, downloads, API example),
``/organization`` and ``/organization/{name}``, ``/modules`` (certified-module registry), ``/api-docs``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from catalogue.errors import NotFound
from catalogue.exports import flatten
from catalogue.i18n import LANGUAGE_NAMES, LOCALES, THEMES, city_name, duration, negotiate, pick, translate
from catalogue.search import FACET_FIELDS
from catalogue.service import Catalogue

JsonObject = dict[str, Any]
COOKIE = "qala_lang"
PER_PAGE = 20
PAGE_FACETS = ["organization", "city", "groups", "res_format", "license_id"]
STATIC = {"catalogue.css": "text/css", "catalogue.js": "text/javascript"}

_environment = Environment(
    loader=PackageLoader("catalogue", "templates"), autoescape=select_autoescape(), trim_blocks=True, lstrip_blocks=True
)


def _when(value: str | float | None, locale: str) -> str:
    if not value:
        return "—"
    # POSIX seconds come from the certified-module registry (issuedAt), ISO strings from dataset metadata
    moment = datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else datetime.fromisoformat(value)
    return moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if moment.utcoffset() is not None else "")


_environment.filters["when"] = _when
_environment.filters["duration"] = duration


def _facet_label(field: str, value: str, locale: str) -> str:
    if field == "groups" and value in THEMES:
        return THEMES[value][locale]
    if field in ("city", "organization"):
        return (
            city_name(value)[locale]
            if field == "city" or value in ("astana", "almaty", "shymkent", "karaganda", "kz")
            else value
        )
    return value


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    catalogue: Catalogue = request.app.state.catalogue
    locale = negotiate(request.cookies.get(COOKIE), request.headers.get("accept-language"))
    page = _environment.get_template(template).render(
        t=lambda key: translate(key, locale),
        pick=lambda v: pick(v, locale),
        locale=locale,
        locales=LOCALES,
        language_names=LANGUAGE_NAMES,
        site=catalogue.settings,
        path=request.url.path,
        current=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        facet_label=lambda f, v: _facet_label(f, v, locale),
        **context,
    )
    return HTMLResponse(page, status_code=status, headers={"Content-Language": locale, "Vary": "Cookie"})


async def home(request: Request) -> HTMLResponse:
    catalogue: Catalogue = request.app.state.catalogue
    recent = await catalogue.package_search({"rows": 6, "sort": "metadata_modified desc", "facet.field": ["groups"]})
    return _render(
        request,
        "home.html",
        recent=recent["results"],
        total=recent["count"],
        themes=[(name, recent["facets"]["groups"].get(name, 0)) for name in THEMES],
    )


async def search_page(request: Request) -> HTMLResponse:
    catalogue: Catalogue = request.app.state.catalogue
    query = request.query_params
    chosen = {f: query.getlist(f) for f in PAGE_FACETS if query.getlist(f)}
    fq = " ".join(f'{f}:"{v}"' for f, values in chosen.items() for v in values if '"' not in v)
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        page = 1
    found = await catalogue.package_search(
        {
            "q": query.get("q", ""),
            "fq": fq,
            "rows": PER_PAGE,
            "start": (page - 1) * PER_PAGE,
            "facet.field": PAGE_FACETS,
            "facet.limit": 20,
        }
    )
    pages_total = max(1, math.ceil(found["count"] / PER_PAGE))

    def link(**change: Any) -> str:
        params = [(k, v) for k, v in query.multi_items() if k not in change and k != "page"]
        for key, value in change.items():
            if isinstance(value, tuple):  # toggle a facet value
                field, item = value
                current = [(k, v) for k, v in params if not (k == field and v == item)]
                params = current if len(current) < len(params) else [*params, (field, item)]
            elif value is not None:
                params.append((key, str(value)))
        return "/dataset?" + urlencode(params)

    return _render(
        request,
        "search.html",
        found=found,
        q=query.get("q", ""),
        chosen=chosen,
        page=page,
        pages_total=pages_total,
        link=link,
        facet_fields=[f for f in PAGE_FACETS if f in FACET_FIELDS],
    )


async def dataset_page(request: Request, name: str) -> HTMLResponse:
    catalogue: Catalogue = request.app.state.catalogue
    try:
        doc = await catalogue.package_show(name)
    except NotFound:
        return _render(request, "not_found.html", status=404)
    columns: list[str] = []
    preview: list[dict[str, str]] = []
    if doc.get("live"):
        live = catalogue.live_rows(doc)
        columns = live.columns
        preview = [flatten(row) async for row in live.rows(limit=10)]
        used = {c for row in preview for c, v in row.items() if v}
        columns = [c for c in columns if c in used] or columns
    api_resource = next((r for r in doc.get("resources", []) if r.get("format") == "API"), None)
    site = catalogue.settings.site_url.rstrip("/")
    example = (
        f"curl '{site}/api/3/action/datastore_search?resource_id={api_resource['id']}&limit=5'"
        if api_resource
        else f"curl '{site}/api/3/action/package_show?id={doc['name']}'"
    )
    return _render(
        request,
        "dataset.html",
        doc=doc,
        columns=columns,
        preview=preview,
        example=example,
        python_example=f'RemoteCKAN("{site}").action.package_show(id="{doc["name"]}")',
    )


async def organizations_page(request: Request) -> HTMLResponse:
    catalogue: Catalogue = request.app.state.catalogue
    return _render(
        request, "organizations.html", organizations=await catalogue.group_list("organization", all_fields=True)
    )


async def organization_page(request: Request, name: str) -> HTMLResponse:
    catalogue: Catalogue = request.app.state.catalogue
    try:
        organization = await catalogue.group_show("organization", name, include_datasets=True)
    except NotFound:
        return _render(request, "not_found.html", status=404)
    return _render(request, "organization.html", organization=organization)


async def modules_page(request: Request) -> HTMLResponse:
    catalogue: Catalogue = request.app.state.catalogue
    return _render(request, "modules.html", modules=list(catalogue.modules()))


async def api_page(request: Request) -> HTMLResponse:
    return _render(request, "api.html")


async def language(code: str, next: str = "/") -> RedirectResponse:
    if code not in LOCALES:
        raise HTTPException(404, "Unknown language")
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="lax", httponly=False)
    return response


async def static(filename: str) -> Response:
    if filename not in STATIC:
        raise HTTPException(404, "Not found")
    body = files("catalogue").joinpath("static", filename).read_bytes()
    return Response(body, media_type=STATIC[filename], headers={"Cache-Control": "max-age=3600"})


def router() -> APIRouter:
    """The public pages; they read the service from ``request.app.state.catalogue``."""
    pages = APIRouter(tags=["web"], include_in_schema=False)
    pages.add_api_route("/", home, methods=["GET"])
    pages.add_api_route("/dataset", search_page, methods=["GET"])
    pages.add_api_route("/dataset/{name}", dataset_page, methods=["GET"])
    pages.add_api_route("/organization", organizations_page, methods=["GET"])
    pages.add_api_route("/organization/{name}", organization_page, methods=["GET"])
    pages.add_api_route("/modules", modules_page, methods=["GET"])
    pages.add_api_route("/api-docs", api_page, methods=["GET"])
    pages.add_api_route("/lang/{code}", language, methods=["GET"])
    pages.add_api_route("/static/catalogue/{filename}", static, methods=["GET"])
    return pages
