"""Downloads: live datasets streamed as CSV, JSON or GeoJSON, and files uploaded with ``resource_create``.

GET /dataset/{name}/download/{name}.csv          a live dataset, public fields or aggregates only
GET /dataset/{id}/resource/{rid}/download/{file} an uploaded file
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from catalogue.errors import NotFound
from catalogue.exports import MEDIA_TYPES, stream_csv, stream_geojson, stream_json
from catalogue.service import Catalogue


def router() -> APIRouter:
    downloads = APIRouter(tags=["downloads"])

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
            body = stream_csv(live.columns, live.rows())
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
