"""``qala simulate``: living cities feeding a hub through its public interfaces only.

For each city it registers, through the admin API, a member and one OAuth client per city system (109 contact
centre, settlement hub, air monitoring, transport operator, meter head-end), each limited to its city and its
collection. Then, one step a second, every system sends what :mod:`qala.simcity` says it would: cases and
payments and air-quality readings through the batch API, vehicle positions as a GTFS-Realtime feed through the
gtfs-rt adapter, meter readings as SenML over MQTT through the senml-mqtt adapter.

    qala simulate --hub http://127.0.0.1:8000 --client-id $ADMIN_ID --client-secret $ADMIN_SECRET \\
        --seed 7 --duration 600 --rate 1

What is sent depends only on ``--seed``, ``--rate`` and the start time; ``--duration 0`` runs until Ctrl-C.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import orjson
import paho.mqtt.client as mqtt
import typer
from google.transit import gtfs_realtime_pb2
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.table import Table

from adapters.pipeline import run as run_pipeline
from adapters.push import BatchPusher, HubClient
from adapters.registry import AdapterRegistry
from qala.cli import CliError
from qala.simcity import CHARACTERS, STEP_SECONDS, CitySim, Step
from schemas import SchemaRegistry
from schemas.identifiers import with_check_digit

SYSTEMS: dict[str, str] = {
    "contact-centre": "service-requests",
    "settlement": "payment-transactions",
    "air": "air-quality-observed",
    "transport": "vehicle-positions",
    "meters": "meter-readings",
}
out = Console(highlight=False, soft_wrap=True, stderr=True)


class SimulationError(Exception):
    """The hub refused to set the simulation up (bad admin credentials, unreachable hub)."""


def _admin(hub: str, client_id: str, secret: str) -> httpx.Client:
    http = httpx.Client(base_url=hub, timeout=30.0)
    try:
        response = http.post(
            "/oauth/token", data={"grant_type": "client_credentials", "scope": "admin"}, auth=(client_id, secret)
        )
    except httpx.HTTPError as exc:
        http.close()
        raise SimulationError(f"cannot reach the hub at {hub}: {exc}") from exc
    if response.status_code != 200:
        http.close()
        raise SimulationError(f"the hub refused the admin client: {response.status_code} {response.text[:200]}")
    http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return http


def provision(hub: str, client_id: str, secret: str, cities: list[str]) -> dict[tuple[str, str], HubClient]:
    """A member per city and an OAuth client per (city, system); returns a client for each."""
    clients: dict[tuple[str, str], HubClient] = {}
    http = _admin(hub, client_id, secret)
    try:
        for index, city in enumerate(cities):
            member = with_check_digit(f"9702400{90 + index:04d}")
            answer = http.post(
                "/api/v1/admin/members", json={"name": f"{city.title()} city systems", "bin": member, "homeCity": city}
            )
            if answer.status_code not in (201, 409):
                raise SimulationError(
                    f"cannot register the member for {city}: {answer.status_code} {answer.text[:200]}"
                )
            for system, collection in SYSTEMS.items():
                answer = http.post(
                    "/api/v1/admin/clients",
                    json={
                        "member": member,
                        "name": f"{city} {system} (simulated)",
                        "scopes": [f"{collection}:write"],
                        "cities": [city],
                    },
                )
                if answer.status_code != 201:
                    raise SimulationError(f"cannot register {city} {system}: {answer.status_code} {answer.text[:200]}")
                body = answer.json()
                clients[city, system] = HubClient(hub, body["clientId"], body["clientSecret"])
    finally:
        http.close()
    return clients


@dataclass
class Simulation:
    hub: str
    clients: dict[tuple[str, str], HubClient]
    sims: dict[str, CitySim]
    work: Path
    mqtt_url: str | None = None
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    _meter_threads: list[threading.Thread] = field(default_factory=list)

    def run(
        self, steps: int | None, stop: threading.Event | None = None, clock: Callable[[], float] = time.time
    ) -> Counter[tuple[str, str, str]]:
        """Run ``steps`` steps (None: until ``stop`` is set), one per second of the wall clock."""
        self.work.mkdir(parents=True, exist_ok=True)
        stop = stop or threading.Event()
        publisher = self._start_meters(steps)
        for city, sim in self.sims.items():
            self._send(city, "contact-centre", sim.backlog)
        index = 0
        start = min(sim.start for sim in self.sims.values())
        try:
            while (steps is None or index < steps) and not stop.is_set():
                delay = start + index * STEP_SECONDS - clock()
                if delay > 0 and stop.wait(delay):
                    break
                for city, sim in self.sims.items():
                    self._deliver(city, sim.step(index), index, publisher)
                index += 1
        finally:
            if publisher is not None:
                publisher.disconnect()
            for thread in self._meter_threads:
                thread.join(timeout=200)
            for client in self.clients.values():
                client.close()
        return self.counts

    def _deliver(self, city: str, step: Step, index: int, publisher: mqtt.Client | None) -> None:
        self._send(city, "contact-centre", step.cases)
        self._send(city, "settlement", step.payments)
        self._send(city, "air", step.air)
        if step.vehicles:
            self._vehicles(city, step, index)
        if publisher is not None:
            for topic, pack in step.meters:
                publisher.publish(topic, orjson.dumps(pack), qos=1)
                self.counts[city, "meters", "published"] += 1

    def _send(self, city: str, system: str, entities: list[dict[str, object]]) -> None:
        if not entities:
            return
        body = b"\n".join(orjson.dumps(e) for e in entities) + b"\n"
        for result in self.clients[city, system].send_batch(body, len(entities)):
            self.counts[city, system, str(result.get("status", "rejected"))] += 1

    def _vehicles(self, city: str, step: Step, index: int) -> None:
        feed = gtfs_realtime_pb2.FeedMessage()
        feed.header.gtfs_realtime_version = "2.0"
        feed.header.timestamp = max(v[5] for v in step.vehicles)
        for vehicle_id, route, lon, lat, bearing, seconds in step.vehicles:
            entity = feed.entity.add(id=vehicle_id)
            entity.vehicle.vehicle.id = vehicle_id
            entity.vehicle.trip.route_id = route
            entity.vehicle.position.longitude = lon
            entity.vehicle.position.latitude = lat
            entity.vehicle.position.bearing = bearing
            entity.vehicle.timestamp = seconds
        path = self.work / f"{city}-vehicles.pb"
        path.write_bytes(feed.SerializeToString())
        adapter = AdapterRegistry.load().create("gtfs-rt", str(path), None, {"city": city, "route_type": "3"})
        pusher = BatchPusher(
            self.clients[city, "transport"], self.work / f"{city}-vehicles.state.json", f"{city}-{index}"
        )
        run_pipeline(adapter, SchemaRegistry.load(), sink=pusher)
        for status, count in pusher.statuses.items():
            self.counts[city, "transport", status] += count

    def _start_meters(self, steps: int | None) -> mqtt.Client | None:
        if not self.mqtt_url:
            return None
        url = urlsplit(self.mqtt_url)
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"qala-sim-{time.monotonic_ns()}")
        try:
            publisher.connect(url.hostname or "127.0.0.1", url.port or 1883)
        except OSError as exc:
            out.print(f"qala: warning: no MQTT broker at {self.mqtt_url} ({exc}); meters are not simulated")
            return None
        publisher.loop_start()
        for city, sim in self.sims.items():
            expected = None if steps is None else sum(sim.c.meters for i in range(steps) if sim.meters_due(i))
            thread = threading.Thread(target=self._meter_bridge, args=(city, url.netloc, expected), daemon=True)
            thread.start()
            self._meter_threads.append(thread)
        time.sleep(1.0)  # let the adapters subscribe before the first reading is published
        return publisher

    def _meter_bridge(self, city: str, netloc: str, expected: int | None) -> None:
        """The meter head-end's bridge: the senml-mqtt adapter, pushing through the city's meters client. It
        stops after the ``expected`` messages of a finite run, or when none came for three reporting periods."""
        options = {"city": city, "idle_timeout": str(max(10, 3 * round(60 / self.sims[city].rate)))}
        if expected is not None:
            options["max_messages"] = str(expected)
        adapter = AdapterRegistry.load().create(
            "senml-mqtt", f"mqtt://{netloc}/qala/sim/{city}/meters/#", None, options
        )
        pusher = BatchPusher(
            self.clients[city, "meters"],
            self.work / f"{city}-meters.state.json",
            f"{city}-{time.time()}",
            batch_size=20,
        )
        try:
            run_pipeline(adapter, SchemaRegistry.load(), sink=pusher, every=1)
        except Exception as exc:  # the bridge is one system among five: report it and let the others run
            out.print(f"qala: warning: {city} meter bridge stopped: {exc}")
        for status, count in pusher.statuses.items():
            self.counts[city, "meters", status] += count


def build(
    hub: str,
    client_id: str,
    secret: str,
    *,
    seed: int,
    rate: float,
    cities: list[str],
    work: Path,
    mqtt_url: str | None,
    start: float | None = None,
) -> Simulation:
    unknown = [city for city in cities if city not in CHARACTERS]
    if unknown:
        raise SimulationError(f"no simulated character for {', '.join(unknown)}; choose from {', '.join(CHARACTERS)}")
    begin = time.time() if start is None else start
    sims = {city: CitySim(CHARACTERS[city], seed=seed, start=begin, rate=rate) for city in cities}
    return Simulation(hub, provision(hub, client_id, secret, cities), sims, work, mqtt_url)


def simulate(
    *,
    hub: Annotated[str, typer.Option(help="Base URL of the hub.")] = "http://127.0.0.1:8000",
    client_id: Annotated[
        str, typer.Option(envvar="QALA_CLIENT_ID", help="An admin client (registers the systems).")
    ] = "",
    client_secret: Annotated[str, typer.Option(envvar="QALA_CLIENT_SECRET", help="Its secret.")] = "",
    seed: Annotated[int, typer.Option(help="Same seed, same cities.")] = 1,
    duration: Annotated[float, typer.Option(help="Seconds to run; 0 runs until Ctrl-C.", min=0)] = 600,
    rate: Annotated[
        float, typer.Option(help="How much happens per second (1 = the methodology's scale).", min=0.01, max=100)
    ] = 1.0,
    cities: Annotated[str, typer.Option(help="Comma-separated city codes.")] = "astana,almaty,shymkent",
    mqtt_url: Annotated[
        str, typer.Option("--mqtt", help="MQTT broker for the meters; '' to leave them out.")
    ] = "mqtt://127.0.0.1:1883",
    work: Annotated[Path, typer.Option(help="Scratch files (GTFS-RT feeds, push state).")] = Path("var/simulate"),
) -> None:
    """Feed a hub realistic, continuous data for Astana, Almaty and Shymkent through its real interfaces."""
    if not client_id or not client_secret:
        raise CliError("an admin client is needed: --client-id and --client-secret (or QALA_CLIENT_ID/SECRET)")
    try:
        simulation = build(
            hub,
            client_id,
            client_secret,
            seed=seed,
            rate=rate,
            cities=[c.strip() for c in cities.split(",") if c.strip()],
            work=work,
            mqtt_url=mqtt_url or None,
        )
    except SimulationError as exc:
        raise CliError(str(exc)) from exc
    out.print(f"simulating {', '.join(simulation.sims)} against {hub} (seed {seed}, rate {rate}); Ctrl-C stops")
    try:
        counts = simulation.run(int(duration / STEP_SECONDS) if duration else None)
    except KeyboardInterrupt:
        counts = simulation.counts
    print_summary(counts)


def print_summary(counts: Counter[tuple[str, str, str]]) -> None:
    table = Table("city", "system", "outcome", "entities")
    for (city, system, status), count in sorted(counts.items()):
        table.add_row(city, system, status, str(count))
    Console(highlight=False).print(table)


def start_in_background(hub: str, client_id: str, secret: str, work: Path, *, seed: int = 1) -> threading.Event:
    """Run the simulation in a daemon thread until the returned event is set (``make demo`` does this)."""
    stop = threading.Event()

    def main() -> None:
        try:
            build(
                hub,
                client_id,
                secret,
                seed=seed,
                rate=1.0,
                cities=list(CHARACTERS),
                work=work,
                mqtt_url="mqtt://127.0.0.1:1883",
            ).run(None, stop)
        except Exception as exc:  # the demo hub keeps serving without its simulated cities
            out.print(f"qala: warning: the simulation stopped: {exc}")

    threading.Thread(target=main, name="qala-simulate", daemon=True).start()
    return stop
