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
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conformance.errors import IssuerError
from conformance.serving import serve_app

DEFAULT_ISSUER_URL = "http://127.0.0.1:8765"


def default_state_dir() -> Path:
    """Where the issuer key lives between runs: ``$QALA_HOME/conformance``, else the user's state directory.

    Never relative to the working directory: the suite's identity (its ``kid``) must not change with the folder a
    vendor happens to run it from, or a module configured once would stop trusting it.
    """
    home = os.environ.get("QALA_HOME")
    if home:
        return Path(home).expanduser() / "conformance"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "qala" / "conformance"


DEFAULT_STATE_DIR = default_state_dir()
KEY_FILE = "issuer-key.json"
JWKS_PATH = "/oauth/jwks"
METADATA_PATH = "/.well-known/oauth-authorization-server"
FORGED_JWKS_PATH = "/forged/jwks"
FORGED_CERT_PATH = "/forged/cert.pem"
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
        without: tuple[str, ...] = (),
    ) -> str:
        """A signed token; ``changes`` alters claims, ``without`` drops some, ``header`` the JOSE header, ``key``
        forges the signature."""
        claims = {**self.claims(audience=audience, scopes=scopes, cities=cities), **(changes or {})}
        claims = {name: value for name, value in claims.items() if name not in without}
        protected = {"alg": ALG, "typ": "at+jwt", "kid": self.kid, **(header or {})}
        return jwt.encode(protected, claims, key or self.key, algorithms=[ALG])

    def mint_unsigned(self, *, audience: str, scopes: list[str], cities: list[str]) -> str:
        """A token with ``alg: none`` and an empty signature, which every resource server must refuse."""
        claims = self.claims(audience=audience, scopes=scopes, cities=cities)
        return f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': self.kid})}.{_b64(claims)}."

    # -- the classic JOSE attacks: a key the token names itself, and algorithm confusion -----------------

    @cached_property
    def attacker(self) -> ECKey:
        """A key of the forger's own, never published in the issuer's JWKS."""
        return ECKey.generate_key("P-256")

    @cached_property
    def attacker_certificate(self) -> x509.Certificate:
        """A self-signed certificate for :attr:`attacker`, naming the suite's issuer as its subject."""
        private = self.attacker.private_key
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, urlsplit(self.url).hostname or "issuer")])
        now = dt.datetime.now(dt.UTC)
        builder = x509.CertificateBuilder().subject_name(name).issuer_name(name)
        builder = builder.public_key(private.public_key()).serial_number(x509.random_serial_number())  # type: ignore[union-attr]
        builder = builder.not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        return builder.sign(private, hashes.SHA256())  # type: ignore[arg-type]

    def mint_with_header_key(self, where: str, *, audience: str, scopes: list[str], cities: list[str]) -> str:
        """Signed by :attr:`attacker`, whose key the header carries or points at (``jwk``, ``jku``, ``x5c``, ``x5u``).

        A resource server must only ever use the keys of its configured issuer, whatever the token says.
        """
        public = dict(self.attacker.as_dict(private=False))
        kid = self.attacker.thumbprint()
        header: dict[str, Any] = {"kid": kid}
        if where == "jwk":
            header["jwk"] = {**public, "kid": kid}
        elif where == "jku":
            header["jku"] = self.url + FORGED_JWKS_PATH
        elif where == "x5c":
            der = self.attacker_certificate.public_bytes(serialization.Encoding.DER)
            header["x5c"] = [base64.b64encode(der).decode()]
        elif where == "x5u":
            header["x5u"] = self.url + FORGED_CERT_PATH
        else:
            raise ValueError(f"no header key kind {where!r}")
        return self.mint(audience=audience, scopes=scopes, cities=cities, header=header, key=self.attacker)

    def mint_hs256_confused(self, *, audience: str, scopes: list[str], cities: list[str], form: str = "pem") -> str:
        """HS256 over the token with the issuer's *public* key as the HMAC secret (CVE-2024-37568's class).

        ``form`` is how a confused verifier would turn the public key into bytes: its PEM, or its JWK JSON.
        """
        if form == "pem":
            secret = self.key.public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            secret = json.dumps(dict(self.key.as_dict(private=False)), separators=(",", ":")).encode()
        claims = self.claims(audience=audience, scopes=scopes, cities=cities)
        signing_input = f"{_b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': self.kid})}.{_b64(claims)}"
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"

    def app(self) -> Starlette:
        async def jwks(_: Request) -> JSONResponse:
            return JSONResponse(self.jwks(), headers={"Cache-Control": "max-age=60"})

        async def metadata(_: Request) -> JSONResponse:
            return JSONResponse(self.metadata())

        async def forged_jwks(_: Request) -> JSONResponse:
            public = dict(self.attacker.as_dict(private=False))
            return JSONResponse({"keys": [{**public, "kid": self.attacker.thumbprint(), "alg": ALG, "use": "sig"}]})

        async def forged_cert(_: Request) -> Response:
            pem = self.attacker_certificate.public_bytes(serialization.Encoding.PEM)
            return Response(pem, media_type="application/pem-certificate-chain")

        return Starlette(
            routes=[
                Route(JWKS_PATH, jwks),
                Route(METADATA_PATH, metadata),
                Route(FORGED_JWKS_PATH, forged_jwks),
                Route(FORGED_CERT_PATH, forged_cert),
            ]
        )

    @contextlib.contextmanager
    def serve(self, bind: str | None = None) -> Iterator[str]:
        """Serve the JWKS and metadata on the issuer URL's port (on ``bind``, default its host) during the block."""
        parts = urlsplit(self.url)
        host, port = bind or parts.hostname or "127.0.0.1", parts.port or 80
        try:
            server = serve_app(self.app(), host, port)
            base = server.__enter__()
        except OSError as exc:
            raise IssuerError(f"the suite's issuer cannot listen on {host}:{port}: {exc}") from exc
        try:
            yield base
        finally:
            server.__exit__(None, None, None)
