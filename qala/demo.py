"""``qala demo``: the hub on http://127.0.0.1:8000 with demo data loaded through the adapters.

It runs in the hub's home (``--home`` / ``QALA_HOME``, see :mod:`qala.home`), so every other ``qala`` command finds
the same hub. Before touching anything it checks that the port is free and that no hub holds the home's lock, and
it only ever resets a demo home: its database and working files (the conformance suite's issuer key stays). Then
it registers a demo member and client (printed once, like any client secret), starts the hub, and sends every
bundled legacy export (``examples/legacy``) through its adapter and the OAuth-secured batch API, exactly as a city
system would. Collections that no legacy sample feeds get the canonical examples from ``schemas/models``. Then it
serves until Ctrl-C.

    make demo                      # or: ./qala demo --port 8000
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

from adapters.cli import upload_quarantine
from adapters.mapping import Mapping
from adapters.pipeline import run
from adapters.push import BatchPusher, HubClient
from adapters.quarantine import Quarantine
from adapters.registry import AdapterRegistry
from conformance.serving import serve_app
from gateway.app import create_app
from gateway.clients import ALL_CITIES
from gateway.services import open_services
from gateway.settings import Settings
from qala.cli import CliError
from qala.home import Home, HomeBusy, resolve_home
from qala.ports import check_port
from qala.simulate import start_in_background
from schemas import SchemaRegistry
from schemas.identifiers import with_check_digit
from schemas.registry import MODELS_DIR

ROOT = Path(__file__).resolve().parent.parent
LEGACY = ROOT / "examples" / "legacy"
DEMO_BIN = with_check_digit("97024000122")
out = Console(highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class Sample:
    adapter: str
    source: str
    mapping: str | None = None
    options: tuple[tuple[str, str], ...] = ()


SAMPLES = (
    Sample("csv", "ikomek-109-astana.csv", "ikomek-109-astana.yaml"),
    Sample("xlsx", "almaty-109.xlsx", "almaty-109.yaml"),
    Sample("csv", "facilities-astana.csv", "facilities-astana.yaml"),
    Sample("dbf", "onay-payments.dbf", "onay-payments.yaml"),
    Sample("fixed-width", "meters-astana.txt", "meters-astana.yaml"),
    Sample("xml", "egov-organizations.xml", "egov-organizations.yaml"),
    Sample("open311", "open311-shymkent", None, (("city", "shymkent"),)),
    Sample("gtfs-rt", "almaty-vehicles.pb", None, (("city", "almaty"), ("route_type", "3"))),
    Sample("senml", "senml-astana.ndjson", None, (("city", "astana"),)),
)


async def _register(settings: Settings) -> tuple[str, str]:
    scopes = ["admin"] + [
        f"{schema.collection}:{access}"
        for schema in SchemaRegistry.load().latest()
        for access in ("read", "write", "read-personal")
    ]
    async with open_services(settings) as services:
        await services.directory.create_member(name="Qala demo city", bin=DEMO_BIN, home_city="astana")
        client, secret = await services.directory.create_client(
            member=DEMO_BIN, name="demo system", scopes=scopes, cities=[ALL_CITIES]
        )
    assert secret is not None
    return client.client_id, secret


def _load_sample(sample: Sample, hub: str, client_id: str, secret: str, work: Path) -> tuple[int, int, int]:
    adapter = AdapterRegistry.load().create(
        sample.adapter,
        str(LEGACY / sample.source),
        Mapping.load(LEGACY / sample.mapping) if sample.mapping else None,
        dict(sample.options),
    )
    client = HubClient(hub, client_id, secret)
    pusher = BatchPusher(client, work / f"{sample.source}.push-state.json", sample.source)
    quarantine = work / f"{sample.source}.quarantine.ndjson"
    try:
        with quarantine.open("wb") as stream:
            summary = run(adapter, SchemaRegistry.load(), quarantine=Quarantine(stream, sample.adapter), sink=pusher)
        upload_quarantine(client, quarantine)
    finally:
        client.close()
    return summary.read, summary.accepted, summary.rejected


def _load_examples(hub: str, client_id: str, secret: str, fed: set[str]) -> int:
    lines = [
        orjson.dumps(orjson.loads(path.read_bytes()))
        for folder in sorted(p for p in MODELS_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
        if folder.name not in fed
        for path in sorted((folder / "examples").glob("*.json"))
    ]
    with httpx.Client(timeout=60) as http:
        token = http.post(f"{hub}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
        headers = {"Authorization": f"Bearer {token.json()['access_token']}", "Content-Type": "application/x-ndjson"}
        response = http.post(f"{hub}/api/v1/batch", content=b"\n".join(lines), headers=headers)
    return sum(1 for line in response.text.splitlines() if orjson.loads(line)["status"] != "rejected")


def _reset(home: Home, hub: str) -> None:
    """Empty a demo home, refusing one that holds any other hub's data."""
    kind = home.read_env().get("QALA_ENV")
    if kind not in (None, "demo") or (kind is None and home.database.exists()):
        raise CliError(f"{home.path} holds a hub that is not a demo; the demo resets its home: choose another --home")
    for path in home.path.glob(f"{home.database.name}*"):  # the database and its -wal/-shm companions
        path.unlink()
    shutil.rmtree(home.work, ignore_errors=True)
    home.work.mkdir(parents=True)
    home.write_env({"QALA_ENV": "demo", "QALA_ISSUER": hub})


def demo(
    port: Annotated[int, typer.Option(help="Port of the hub.")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    exit_after_load: Annotated[bool, typer.Option("--exit-after-load", help="Stop once the data is loaded.")] = False,
) -> None:
    """Start the hub on http://127.0.0.1:8000 with demo data loaded through the adapters."""
    home = Home(resolve_home())
    hub = f"http://{host}:{port}"
    check_port(host, port)
    try:
        with home.lock():
            _reset(home, hub)
            _run(home, host, port, exit_after_load)
    except HomeBusy as exc:
        raise CliError(f"{exc}: stop it first, or start the demo with another --home") from exc


def _run(home: Home, host: str, port: int, exit_after_load: bool) -> None:
    hub = f"http://{host}:{port}"
    settings = Settings(env="demo", home=home.path, database_url=home.database_url, issuer=hub)
    settings.kpi_interval_seconds = 5.0  # CityScore-KZ: the KPI engine follows the simulated cities
    client_id, secret = asyncio.run(_register(settings))
    try:
        server = serve_app(create_app(settings, server_gc=True), host, port)
        base = server.__enter__()
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc} (is another hub running? try --port)") from exc
    try:
        table = Table("legacy export", "adapter", "read", "accepted", "rejected")
        fed: set[str] = set()
        for sample in SAMPLES:
            read, accepted, rejected = _load_sample(sample, base, client_id, secret, home.work)
            table.add_row(sample.source, sample.adapter, str(read), str(accepted), str(rejected))
            mapping = Mapping.load(LEGACY / sample.mapping) if sample.mapping else None
            if mapping is not None:
                fed.add(mapping.type)
        out.print(table)
        fed.add("KPIValue")  # the KPI engine computes real ones from the simulated cities: no static examples
        examples = _load_examples(base, client_id, secret, fed | {"ServiceRequest", "VehiclePosition", "MeterReading"})
        out.print(f"{examples} canonical examples loaded for the other collections")
        _print_welcome(base, client_id, secret, home)
        if exit_after_load:
            return
        simulation = start_in_background(base, client_id, secret, home.work / "simulate")  # living demo cities
        out.print("Simulating Astana, Almaty and Shymkent; CityScore-KZ at " + f"{base}/cityscore")
        try:
            while True:
                asyncio.run(asyncio.sleep(3600))
        except KeyboardInterrupt:
            simulation.set()
            out.print("stopped")
    finally:
        server.__exit__(*sys.exc_info())


def _qala_command() -> str:
    """How to type ``qala`` here: the clone's ``bin/qala`` needs no activated virtual environment."""
    wrapper = ROOT / "bin" / "qala"
    if not wrapper.is_file():
        return "qala"  # installed as a package: the console script is on PATH
    return "bin/qala" if Path.cwd().resolve() == ROOT else str(wrapper)


def _print_welcome(base: str, client_id: str, secret: str, home: Home) -> None:
    qala = _qala_command()
    out.print(f"\n[bold]Qala hub[/bold] running at {base}", markup=True)
    out.print(f"  home                {home.path}  (database {home.database}; `{qala} status` shows it)", markup=False)
    out.print(f"  open-data catalogue {base}/", markup=False)
    out.print(f"  API documentation   {base}/docs   OpenAPI {base}/openapi.json", markup=False)
    out.print(f"  schema registry     {base}/api/v1/schemas", markup=False)
    out.print("\nDemo client (all scopes, every city; shown once). Paste into your shell:", markup=False)
    out.print(f"  export QALA_HOME={home.path}", markup=False)
    out.print(f"  export QALA_CLIENT_ID={client_id}", markup=False)
    out.print(f"  export QALA_CLIENT_SECRET={secret}", markup=False)
    out.print("\nTry:", markup=False)
    out.print(
        f'  TOKEN=$(curl -s -u "$QALA_CLIENT_ID:$QALA_CLIENT_SECRET" -d grant_type=client_credentials '
        f"{base}/oauth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        markup=False,
    )
    out.print(
        f"  curl -H \"Authorization: Bearer $TOKEN\" '{base}/api/v1/service-requests?city=astana&limit=5'", markup=False
    )
    out.print(f"  {qala} status", markup=False)
    out.print("\nCtrl-C stops the hub.", markup=False)
