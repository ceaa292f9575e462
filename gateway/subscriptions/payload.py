"""What a webhook delivery carries: Qala's change batch (the default), or an NGSI-LD Notification.

A subscription made through ``/api/v1/subscriptions`` receives Qala's batch::

    {"subscription": "sub_...", "cursor": "...", "changes": [{"seq", "op", "id", "type", "entity", ...}]}

One made through ``POST /ngsi-ld/v1/subscriptions`` receives what NGSI-LD receivers (QuantumLeap, Orion-LD
clients) expect, ETSI GS CIM 009 §5.3.1, with the entities in the format it asked for::

    {"id": "urn:ngsi-ld:Notification:msg_...", "type": "Notification",
     "subscriptionId": "urn:ngsi-ld:Subscription:sub_...", "notifiedAt": "2025-03-01T08:00:00.000Z",
     "data": [{"id": "urn:ngsi-ld:AirQualityObserved:astana:1", "type": "AirQualityObserved", ...}]}

Both are signed per Standard Webhooks and retried with the same ``webhook-id``; the Notification's ``id`` is
made from that ``webhook-id``, so a retry names the same notification. Entities are redacted for the owner
exactly as in Qala's batches and converted afterwards. Deletions are not notified in NGSI-LD payloads: the
base notification carries entities, and a deleted one has none left (NGSI-LD's ``entityDeleted`` trigger is
not offered); a receiver that must see deletions subscribes through ``/api/v1/subscriptions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.store.records import StoredEntity
from schemas.ngsi_ld import Format

PayloadFormat = Literal["qala", "ngsi-ld-normalized", "ngsi-ld-keyValues"]
SUBSCRIPTION_URN = "urn:ngsi-ld:Subscription:"
NOTIFICATION_URN = "urn:ngsi-ld:Notification:"
_FORMATS: dict[str, PayloadFormat] = {
    "qala": "qala",
    "ngsi-ld-normalized": "ngsi-ld-normalized",
    "ngsi-ld-keyValues": "ngsi-ld-keyValues",
}


@dataclass(frozen=True)
class Payload:
    """The shape of a subscription's deliveries, and the attributes an NGSI-LD payload keeps (all when None)."""

    format: PayloadFormat = "qala"
    attributes: tuple[str, ...] | None = None

    @classmethod
    def ngsi_ld(cls, form: Format, attributes: list[str] | None = None) -> Payload:
        return cls("ngsi-ld-normalized" if form == "normalized" else "ngsi-ld-keyValues", _tuple(attributes))

    @property
    def entity_format(self) -> Format | None:
        """The NGSI-LD entity format, None for Qala's batch."""
        if self.format == "qala":
            return None
        return "normalized" if self.format == "ngsi-ld-normalized" else "keyValues"

    def carries(self, change: StoredEntity) -> bool:
        """Whether a change of the feed is sent at all: NGSI-LD payloads leave deletions out."""
        return self.format == "qala" or change.payload is not None

    def as_json(self) -> dict[str, Any]:
        return {"format": self.format, "attributes": None if self.attributes is None else list(self.attributes)}


def _tuple(attributes: list[str] | None) -> tuple[str, ...] | None:
    return None if attributes is None else tuple(dict.fromkeys(attributes))


def payload_of(format_: str, attributes: Any) -> Payload:
    """The payload stored in a subscription's row."""
    if format_ not in _FORMATS:
        raise ValueError(f"unknown payload format {format_!r}")
    return Payload(_FORMATS[format_], _tuple(attributes))


def notification_head(subscription_id: str, webhook_id: str, now: float) -> dict[str, Any]:
    """An NGSI-LD Notification without its ``data``."""
    return {
        "id": NOTIFICATION_URN + webhook_id,
        "type": "Notification",
        "subscriptionId": SUBSCRIPTION_URN + subscription_id,
        "notifiedAt": instant(now),
    }


def instant(moment: float) -> str:
    """An NGSI-LD DateTime (UTC, milliseconds) from a Unix time.

    >>> instant(0)
    '1970-01-01T00:00:00.000Z'
    """
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
