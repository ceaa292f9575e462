"""Downloads: live datasets streamed as CSV, JSON or GeoJSON, and files uploaded with ``resource_create``.

GET /dataset/{name}/download/{name}.csv          a live dataset, public fields or aggregates only
GET /dataset/{name}/datapackage.json             its Frictionless Data Package (Table Schema of the CSV)
GET /dataset/{id}/resource/{rid}/download/{file} an uploaded file

The CSV has flat columns (``address.district``, ``location.latitude``, ``name.kk``: see :mod:`catalogue.tabular`);
the JSON and GeoJSON downloads keep every value whole.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from catalogue.cors import OpenReadRoute, preflight
from catalogue.datapackage import descriptor
from catalogue.errors import NotFound
from catalogue.exports import MEDIA_TYPES, stream_geojson, stream_json
from catalogue.service import Catalogue
from catalogue.tabular import stream_flat_csv, table_columns


def router() -> APIRouter:
    downloads = APIRouter(tags=["downloads"], route_class=OpenReadRoute)

    for path in ("/dataset/{name}/download/{filename}", "/dataset/{name}/datapackage.json"):
        downloads.add_api_route(path, preflight, methods=["OPTIONS"], include_in_schema=False)

    @downloads.get("/dataset/{name}/datapackage.json", include_in_schema=False)
    async def datapackage(request: Request, name: str) -> Response:
        catalogue: Catalogue = request.app.state.catalogue
        try:
            doc = await catalogue.package_show(name)
            live = catalogue.live_rows(doc)
        except NotFound as exc:
            raise HTTPException(404, exc.message) from exc
        body = descriptor(doc, table_columns(catalogue.registry, live.version), live.version.type_name)
        return Response(orjson.dumps(body), media_type="application/json", headers={"Cache-Control": "max-age=60"})

    @downloads.get("/dataset/{name}/download/{filename}", include_in_schema=False)
    async def live_download(request: Request, name: str, filename: str) -> StreamingResponse:
        catalogue: Catalogue = request.app.state.catalogue
        stem, _, fmt = filename.rpartition(".")
        try:
            doc = await catalogue.package_show(name)
            live = catalogue.live_rows(doc)
        except NotFound as exc:
            raise HTTPException(404, exc.message) from exc
        if stem != name or fmt not in MEDIA_TYPES or (fmt == "geojson" and not live.geometry):
            raise HTTPException(404, f"No {fmt} download for {name}")
        if fmt == "csv":
            body = stream_flat_csv(table_columns(catalogue.registry, live.version), live.rows())
        elif fmt == "json":
            body = stream_json(live.rows())
        else:
            body = stream_geojson(live.rows())
        headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "max-age=60"}
        return StreamingResponse(body, media_type=MEDIA_TYPES[fmt], headers=headers)

    @downloads.get("/dataset/{dataset_id}/resource/{resource_id}/download/{filename}", include_in_schema=False)
    async def uploaded(request: Request, dataset_id: str, resource_id: str, filename: str) -> Response:
        catalogue: Catalogue = request.app.state.catalogue
        stored = await catalogue.store.upload(resource_id)
        if stored is None or stored[0] != filename:
            raise HTTPException(404, "File not found")
        name, mimetype, content = stored
        return Response(content, media_type=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return downloads
