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

from catalogue import dataset_view, dcat_routes
from catalogue.ckan_api import ACTIONS
from catalogue.dcat import negotiate as negotiate_rdf
from catalogue.errors import NotFound
from catalogue.formatting import local_date, local_time, number, parse_moment, period
from catalogue.i18n import LANGUAGE_NAMES, LOCALES, MESSAGES, THEMES, city_name, duration, negotiate, pick, translate
from catalogue.live import TYPE_TITLES
from catalogue.search import FACET_FIELDS
from catalogue.service import Catalogue
from schemas.cities import CityRegistry
from schemas.registry import collection_name

JsonObject = dict[str, Any]
COOKIE = "qala_lang"
PER_PAGE = 20
PAGE_FACETS = ["organization", "city", "groups", "res_format", "license_id"]
STATIC = {"catalogue.css": "text/css", "catalogue.js": "text/javascript", "favicon.svg": "image/svg+xml"}

_environment = Environment(
    loader=PackageLoader("catalogue", "templates"), autoescape=select_autoescape(), trim_blocks=True, lstrip_blocks=True
)


def _aware(value: str | float | None) -> Any:
    """CKAN's ``metadata_*`` values are naive UTC; POSIX seconds come from the certified-module registry
    (``issuedAt``); everything else carries its offset."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    moment = parse_moment(value)
    return moment.replace(tzinfo=UTC) if isinstance(moment, datetime) and moment.tzinfo is None else value


def _when(value: str | float | None, locale: str) -> str:
    return local_time(_aware(value), locale)


_environment.filters["when"] = _when
_environment.filters["day"] = lambda value, locale: local_date(_aware(value), locale)
_environment.filters["number"] = number
_environment.filters["period"] = period
_environment.filters["duration"] = duration


def _facet_label(field: str, value: str, locale: str) -> str:
    if field == "groups" and value in THEMES:
        return THEMES[value][locale]
    if field == "city" or (field == "organization" and CityRegistry.load().is_known(value)):
        return city_name(value)[locale]
    return value


def tag_label(tag: str, locale: str) -> tuple[str, bool]:
    """A tag as a resident reads it, and whether it is shown as written (a tag someone typed in)."""
    if tag in THEMES:
        return THEMES[tag][locale], False
    if CityRegistry.load().is_known(tag):
        return city_name(tag)[locale], False
    if tag in TYPE_TITLES:
        return TYPE_TITLES[tag][locale], False
    for type_name, titles in TYPE_TITLES.items():
        if tag == collection_name(type_name):
            return titles[locale], False
    if tag == "live":
        return translate("live", locale), False
    return tag, True


def resource_label(resource: JsonObject, locale: str) -> tuple[str, bool]:
    """A generated resource is named by what it is for; a resource someone added keeps its own name."""
    if resource.get("url_type") == "live":
        key = f"format_{str(resource.get('format', '')).lower()}"
        if key in MESSAGES:
            return translate(key, locale), False
    return str(resource.get("name") or ""), True


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
        tag_labels=lambda tags: list(dict.fromkeys(tag_label(tag["name"], locale) for tag in tags)),
        resource_label=lambda r: resource_label(r, locale),
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
        page = min(max(1, int(query.get("page", "1"))), 100_000)  # start = (page - 1) * rows stays an int32
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


async def dataset_page(request: Request, name: str) -> Response:
    catalogue: Catalogue = request.app.state.catalogue
    rdf = negotiate_rdf(request.headers.get("accept"))
    if rdf is not None:  # ckanext-dcat's content negotiation: the same address, as DCAT
        return await dcat_routes.dataset(request, name, rdf)
    try:
        doc = await catalogue.package_show(name)
    except NotFound:
        return _render(request, "not_found.html", status=404)
    locale = negotiate(request.cookies.get(COOKIE), request.headers.get("accept-language"))
    view = None
    if doc.get("live"):
        type_name = catalogue.registry.get(doc["collection"]).type_name
        view = await dataset_view.build(
            catalogue.live_rows(doc), type_name, pick(doc.get("title_translated"), locale), locale
        )
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
        view=view,
        example=example,
        python_example=f'RemoteCKAN("{site}").action.package_show(id="{doc["name"]}")',
    )


async def organizations_page(request: Request) -> HTMLResponse:
    """The cities (CKAN organisations) and the member organisations whose systems publish into each dataset."""
    catalogue: Catalogue = request.app.state.catalogue
    live = await catalogue.package_search({"fq": "tags:live", "rows": 1000, "sort": "name asc"})
    members: dict[str, list[JsonObject]] = {}
    for doc in live["results"]:
        for publisher in (doc.get("lineage") or {}).get("publishers", []):
            members.setdefault(publisher, []).append(doc)
    return _render(
        request,
        "organizations.html",
        organizations=await catalogue.group_list("organization", all_fields=True),
        members=sorted(members.items()),
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
    return _render(request, "api.html", actions=sorted(n for n, a in ACTIONS.items() if a.side_effect_free))


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


async def favicon() -> Response:
    """Browsers ask for ``/favicon.ico`` before reading the page's ``<link rel="icon">``."""
    return await static("favicon.svg")


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
    pages.add_api_route("/favicon.ico", favicon, methods=["GET"])
    return pages
