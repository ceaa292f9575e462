"""The suite as a token issuer: a stable identity (URL + ES256 key) whose JWKS the module under test trusts.

The key is created once under the state directory and reused on every run, so a vendor configures their
module once (issuer URL and JWKS URL). During a run the issuer serves its JWKS and RFC 8414 metadata on the
port of its URL, and mints RFC 9068 access tokens, good ones and deliberately bad ones.

    issuer = SuiteIssuer.from_state_dir(Path("var/conformance"), "http://127.0.0.1:8765")
    token = issuer.mint(audience="http://127.0.0.1:9000", scopes=["service-requests:read"], cities=["astana"])
    with issuer.serve():
        ...                                   # GET http://127.0.0.1:8765/oauth/jwks
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conformance.errors import IssuerError
from conformance.serving import serve_app

DEFAULT_ISSUER_URL = "http://127.0.0.1:8765"
DEFAULT_STATE_DIR = Path("var/conformance")
KEY_FILE = "issuer-key.json"
JWKS_PATH = "/oauth/jwks"
METADATA_PATH = "/.well-known/oauth-authorization-server"
ALG = "ES256"


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class SuiteIssuer:
    """Mints the access tokens of a run; ``clock`` is injectable so tests can pin time."""

    def __init__(self, url: str, key: ECKey, clock: Callable[[], float] = time.time) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.kid = key.thumbprint()
        self.clock = clock

    @classmethod
    def from_state_dir(cls, state_dir: Path, url: str = DEFAULT_ISSUER_URL) -> SuiteIssuer:
        """Load the issuer key from ``state_dir`` (created with mode 0600 on first use)."""
        path = state_dir / KEY_FILE
        try:
            if path.exists():
                key = ECKey.import_key(json.loads(path.read_text(encoding="utf-8")))
            else:
                state_dir.mkdir(parents=True, exist_ok=True)
                key = ECKey.generate_key("P-256")
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    json.dump(key.as_dict(private=True), handle)
        except (OSError, ValueError) as exc:
            raise IssuerError(f"cannot load or create the suite's issuer key at {path}: {exc}") from exc
        return cls(url, key)

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        public = dict(self.key.as_dict(private=False))
        return {"keys": [{**public, "kid": self.kid, "alg": ALG, "use": "sig"}]}

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.jwks_url,
            "response_types_supported": [],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_signing_alg_values_supported": [ALG],
        }

    def claims(self, *, audience: str, scopes: list[str], cities: list[str], lifetime: int = 300) -> dict[str, Any]:
        """RFC 9068 claims of a good token, which the bad ones then alter."""
        now = int(self.clock())
        return {
            "iss": self.url,
            "sub": "qala-conformance-suite",
            "aud": audience,
            "client_id": "qala-conformance-suite",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(scopes),
            "cities": cities,
        }

    def mint(
        self,
        *,
        audience: str,
        scopes: list[str],
        cities: list[str],
        changes: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
        key: ECKey | None = None,
    ) -> str:
        """A signed token; ``changes`` alters claims, ``header`` the JOSE header, ``key`` forges the signature."""
        claims = {**self.claims(audience=audience, scopes=scopes, cities=cities), **(changes or {})}
        protected = {"alg": ALG, "typ": "at+jwt", "kid": self.kid, **(header or {})}
        return jwt.encode(protected, claims, key or self.key, algorithms=[ALG])

    def mint_unsigned(self, *, audience: str, scopes: list[str], cities: list[str]) -> str:
        """A token with ``alg: none`` and an empty signature, which every resource server must refuse."""
        claims = self.claims(audience=audience, scopes=scopes, cities=cities)
        return f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': self.kid})}.{_b64(claims)}."

    def app(self) -> Starlette:
        async def jwks(_: Request) -> JSONResponse:
            return JSONResponse(self.jwks(), headers={"Cache-Control": "max-age=60"})

        async def metadata(_: Request) -> JSONResponse:
            return JSONResponse(self.metadata())

        return Starlette(routes=[Route(JWKS_PATH, jwks), Route(METADATA_PATH, metadata)])

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve the JWKS and metadata on the issuer URL's host and port for the duration of the block."""
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        try:
            server = serve_app(self.app(), host, port)
            base = server.__enter__()
        except OSError as exc:
            raise IssuerError(f"the suite's issuer cannot listen on {host}:{port}: {exc}") from exc
        try:
            yield base
        finally:
            server.__exit__(None, None, None)
