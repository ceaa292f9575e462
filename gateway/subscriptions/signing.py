"""Per-subscription webhook secrets: made, sealed at rest, and used to sign per Standard Webhooks.

A secret is ``whsec_`` + base64 of 32 random bytes, shown to the owner once. The hub must sign with it, so it
is stored encrypted (AES-GCM under a key derived from the server secret), never in clear. After a rotation the
previous secret keeps signing next to the new one for an overlap, and ``webhook-signature`` carries both
``v1,`` entries, so a receiver can switch secrets without losing a delivery.

    >>> sealer = SecretSealer(b"k" * 32)
    >>> secret = new_secret()
    >>> sealer.unseal("sub_1", sealer.seal("sub_1", secret)) == secret
    True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from standardwebhooks.webhooks import Webhook


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class SecretSealer:
    def __init__(self, server_secret: bytes) -> None:
        self._aead = AESGCM(hmac.new(server_secret, b"qala webhook-secret encryption", hashlib.sha256).digest())

    def seal(self, subscription_id: str, secret: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), subscription_id.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, subscription_id: str, sealed: str) -> str:
        raw = base64.urlsafe_b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], subscription_id.encode()).decode()


def signed_headers(webhook_id: str, body: bytes, secrets_: Sequence[str], now: float) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed with every secret in ``secrets_``."""
    moment = datetime.fromtimestamp(int(now), UTC)
    signatures = " ".join(Webhook(secret).sign(webhook_id, moment, body) for secret in secrets_)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now)),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
