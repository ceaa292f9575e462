"""The MQTT adapter against the real Mosquitto broker on 127.0.0.1:1883, one unique topic per test."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.errors import SourceError, SourceUnavailable

pytestmark = pytest.mark.mqtt
PACKS = Path(__file__).parents[3] / "examples" / "legacy" / "senml-astana.ndjson"


def _publish_later(messages: list[tuple[str, bytes]], delay: float = 0.5) -> threading.Thread:
    def publish() -> None:
        time.sleep(delay)  # after the adapter has subscribed
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", 1883)
        client.loop_start()
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)
        client.loop_stop()
        client.disconnect()

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    return thread


def test_senml_over_mqtt_with_a_bad_message_between_good_ones(convert) -> None:
    base = f"qala-test/{uuid.uuid4().hex}/meters"
    good = orjson.dumps([{"bn": "EM-1/", "bt": 1709251200, "u": "kWh", "n": "1-0:1.8.0", "v": 10.5}])
    messages = [(f"{base}/EM-1", good), (f"{base}/EM-1", b"reboot"), (f"{base}/EM-2", good.replace(b"EM-1", b"EM-2"))]
    publisher = _publish_later(messages)
    started = time.monotonic()
    result = convert("senml-mqtt", f"mqtt://127.0.0.1:1883/{base}/+", city="astana", idle_timeout="2")
    publisher.join(5)
    assert time.monotonic() - started < 15
    assert (result.summary.read, result.summary.accepted, result.summary.rejected) == (3, 2, 1)
    assert [e["refDevice"] for e in result.entities] == [
        "urn:ngsi-ld:Device:astana:EM-1",
        "urn:ngsi-ld:Device:astana:EM-2",
    ]
    assert result.entities[0]["dateObserved"] == "2024-03-01T05:00:00+05:00"
    bad = result.quarantine[0]
    assert bad["raw"] == "reboot"
    assert bad["position"]["file"].endswith(f"{base}/EM-1")
    assert bad["reasons"][0]["code"] == "not-senml"


def test_replay_of_recorded_packs_through_the_broker(convert, tmp_path: Path) -> None:
    base = f"qala-test/{uuid.uuid4().hex}"
    replay = tmp_path / "replay.ndjson"
    lines = [orjson.loads(line) for line in PACKS.read_bytes().splitlines()]
    replay.write_bytes(b"\n".join(orjson.dumps({**m, "topic": f"{base}/{m['topic']}"}) for m in lines))
    result = convert(
        "senml-mqtt", f"mqtt://127.0.0.1:1883/{base}/#", city="astana", replay=str(replay), idle_timeout="1.5"
    )
    assert (result.summary.read, result.summary.accepted, result.summary.rejected) == (22, 21, 1)


def test_max_messages_bounds_the_run(convert) -> None:
    base = f"qala-test/{uuid.uuid4().hex}"
    pack = orjson.dumps([{"bn": "WM-1/", "bt": 1709251200, "n": "8-0:1.0.0", "u": "m3", "s": 1.5}])
    publisher = _publish_later([(f"{base}/m", pack)] * 5)
    result = convert("senml-mqtt", f"mqtt://127.0.0.1:1883/{base}/#", city="astana", max_messages="3", idle_timeout="5")
    publisher.join(5)
    assert result.summary.read == 3


def test_broker_down_and_bad_url_are_one_line(convert) -> None:
    with pytest.raises(SourceUnavailable, match="cannot reach the MQTT broker"):
        convert("senml-mqtt", "mqtt://127.0.0.1:9/x/#", city="astana")
    with pytest.raises(SourceError, match="expected mqtt://host"):
        convert("senml-mqtt", "http://127.0.0.1/x", city="astana")
