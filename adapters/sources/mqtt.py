"""SenML packs live from an MQTT broker into MeterReading entities.

The source is ``mqtt://host[:port]/<topic filter>`` (``+`` and ``#`` allowed). The adapter subscribes, then reads
messages until none has come for ``idle_timeout`` seconds or ``max_messages`` have come; every message is
accounted for, and one that is not SenML goes to the quarantine with its topic.

Options: ``city`` (required), ``idle_timeout`` (seconds, default 5), ``max_messages``, ``qos`` (default 1),
``connect_timeout`` (default 5), ``replay`` (an NDJSON file of ``{topic, payload}`` to publish once subscribed:
the demo's stand-in for meters).

    $ qala adapt run senml-mqtt "mqtt://127.0.0.1:1883/qala/astana/meters/#" -o city=astana \\
        -o replay=examples/legacy/senml-astana.ndjson -o idle_timeout=2
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from adapters.errors import MappingError, SourceError, SourceUnavailable
from adapters.mapping import Mapping
from adapters.records import Entity, Record, Rejection
from adapters.sources.senml import message_records, meter_reading


class SenmlMqttAdapter:
    """Subscribes to SenML meter messages; see :mod:`adapters.sources.mqtt`."""

    name: ClassVar[str] = "senml-mqtt"
    summary: ClassVar[str] = "SenML JSON over MQTT (paho-mqtt): meter readings with OBIS codes"
    needs_mapping: ClassVar[bool] = False

    def __init__(self, source: str, mapping: Mapping | None = None, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})
        if not self.options.get("city"):
            raise MappingError("senml-mqtt needs -o city=<tenant code>")
        self.city = self.options["city"]
        url = urlsplit(source.replace("#", "%23"))  # '#' is MQTT's multi-level wildcard, not a URL fragment
        if url.scheme != "mqtt" or not url.hostname or len(url.path) < 2:
            raise SourceError(f"{source!r}: expected mqtt://host[:port]/<topic filter>")
        self.source = source
        self.host, self.port = url.hostname, url.port or 1883
        self.topic = unquote(url.path[1:])
        self.idle = float(self.options.get("idle_timeout", 5))
        self.max_messages = int(self.options["max_messages"]) if self.options.get("max_messages") else None
        self.qos = int(self.options.get("qos", 1))
        self._count = 0
        self._messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._subscribed = threading.Event()

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"qala-adapt-{uuid.uuid4().hex[:12]}")

        def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            client.subscribe(self.topic, qos=self.qos)

        def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
            self._subscribed.set()

        def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
            self._messages.put((message.topic, bytes(message.payload)))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        return client

    def _replay(self, client: mqtt.Client, path: Path) -> None:
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise SourceError(f"cannot open the replay file {path}: {exc.strerror or exc}") from exc
        for line in lines:
            if not line.strip():
                continue
            message = orjson.loads(line)
            payload = message["payload"]
            data = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
            client.publish(str(message["topic"]), data, qos=self.qos).wait_for_publish(timeout=5)

    def records(self) -> Iterator[Record]:
        client = self._client()
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise SourceUnavailable(f"cannot reach the MQTT broker at {self.host}:{self.port}: {exc}") from exc
        client.loop_start()
        try:
            if not self._subscribed.wait(float(self.options.get("connect_timeout", 5))):
                raise SourceUnavailable(f"the MQTT broker at {self.host}:{self.port} did not confirm the subscription")
            if self.options.get("replay"):
                self._replay(client, Path(self.options["replay"]))
            deadline = time.monotonic() + self.idle
            while self.max_messages is None or self._count < self.max_messages:
                try:
                    topic, payload = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    return
                self._count += 1
                deadline = time.monotonic() + self.idle
                yield from message_records(f"mqtt://{self.host}:{self.port}/{topic}", self._count, payload)
        finally:
            client.loop_stop()
            client.disconnect()

    def map(self, record: Record) -> Entity | Rejection:
        return meter_reading(record.values, self.city, f"SenML over MQTT {self.host}")

    def progress(self) -> tuple[int, int | None]:
        return self._count, self.max_messages
