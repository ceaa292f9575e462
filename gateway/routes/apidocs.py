"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served with no CDN: city networks are often closed.

FastAPI's own pages load their JavaScript and CSS from jsDelivr and ReDoc's fonts from Google, and stay blank
offline. The same pages here load the assets that the ``fastapi-offline`` package ships (Swagger UI's bundle and
CSS, ReDoc's standalone build) from ``/docs/assets/``:

    app = FastAPI(docs_url=None, redoc_url=None)
    install(app)                       # GET /docs, /docs/oauth2-redirect, /redoc, /docs/assets/<file>
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
PREFIX = "/docs/assets"


def install(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Add the documentation pages and their assets to ``app`` (built with ``docs_url=None, redoc_url=None``)."""
    title = f"{app.title} API"
    redirect = "/docs/oauth2-redirect"
    bundle = files("fastapi_offline") / "static"
    cache: dict[str, bytes] = {}

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            oauth2_redirect_url=redirect,
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon.png",
        )

    @app.get(redirect, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(PREFIX + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, "Not found")
        if name not in cache:
            cache[name] = (bundle / name).read_bytes()
        return Response(cache[name], media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"})
