"""The gateway's typed settings, read from ``QALA_*`` environment variables.

Nothing here is built at import time: the CLI and ``create_app`` call ``Settings()`` when they need it, and tests
pass their own instance.

    >>> settings = Settings(env="demo", issuer="https://hub.example.kz")
    >>> settings.audience
    'https://hub.example.kz/api/v1'
    >>> settings.token_endpoint
    'https://hub.example.kz/oauth/token'

Outside ``demo`` the hub refuses to start with an empty or well-known ``QALA_SECRET_KEY``:

    >>> Settings(env="production", issuer="https://hub.example.kz")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings
    ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qala.home import Home, resolve_home

DEMO_SECRET = "qala-demo-secret-do-not-use-in-production"  # noqa: S105 -- public on purpose: demo mode only
"""The secret the demo falls back to. It is public, which is why every other environment refuses it."""

MIN_SECRET_LENGTH = 32


class TrustedIssuer(BaseModel):
    """An external issuer whose access tokens the hub accepts (the conformance suite acts as one).

    Give either ``jwks_uri`` (fetched and cached) or an inline ``jwks`` document.
    """

    issuer: str
    jwks_uri: str | None = None
    jwks: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> TrustedIssuer:
        if (self.jwks_uri is None) == (self.jwks is None):
            raise ValueError(f"trusted issuer {self.issuer!r} needs exactly one of jwks_uri or jwks")
        return self


class Settings(BaseSettings):
    """Every knob of the gateway; each field is the environment variable ``QALA_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="QALA_", extra="ignore")

    def __init__(self, **values: Any) -> None:
        # The home's qala.env gives defaults that the environment and explicit values override; the home must be
        # known before the fields are read, hence here rather than in a validator.
        env_file = Home(resolve_home(values.get("home"))).env_file
        super().__init__(_env_file=env_file if env_file.is_file() else None, **values)

    home: Path = Field(default_factory=resolve_home, description="The hub's home (QALA_HOME): see qala.home.")
    env: Literal["demo", "development", "production"] = "demo"
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Server secret: pepper of client-secret digests and the key that encrypts signing keys at rest.",
    )
    database_url: str = Field(default="", description="Default: the SQLite file qala.db in the home.")
    database_pool_size: int = Field(
        default=10, ge=1, description="PostgreSQL connections each worker keeps open (SQLAlchemy's pool_size)."
    )
    database_max_overflow: int = Field(
        default=20,
        ge=0,
        description="Connections a worker may open beyond the pool under load, closed when returned. A worker "
        "uses up to pool_size + max_overflow + 2 (its group commits' kept connections): the server's "
        "max_connections must cover that times the workers of every hub, plus qala deliver and the admin tools.",
    )
    redis_url: str | None = None
    issuer: str = "http://127.0.0.1:8000"
    audience: str = Field(default="", description="The hub API's identifier, the `aud` of its tokens.")

    access_token_ttl: int = Field(default=900, ge=30, le=86_400, description="Access-token lifetime, seconds.")
    clock_leeway: int = Field(default=30, ge=0, le=300, description="Tolerated clock skew for exp/nbf, seconds.")
    key_publish_lead: int = Field(
        default=300, ge=0, description="Seconds a rotated key is published in the JWKS before it starts signing."
    )
    key_refresh_seconds: float = Field(default=30.0, gt=0, description="How often workers reload signing keys.")
    revocation_poll_seconds: float = Field(default=2.0, gt=0, description="How often workers reload revocations.")
    jwks_cache_seconds: int = Field(default=300, ge=0, description="Cache lifetime of trusted issuers' JWKS.")
    trusted_issuers: list[TrustedIssuer] = Field(default_factory=list)

    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    batch_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024, description="Body limit of /api/v1/batch.")

    kpi_interval_seconds: float = Field(default=0, ge=0, description="Run the KPI engine this often; 0: not.")
    rate_limit_enabled: bool = True
    rate_limit_requests: int = Field(default=600, ge=1, description="API requests a client may burst per window.")
    rate_limit_window_seconds: float = Field(default=60.0, gt=0)
    token_rate_limit_requests: int = Field(default=60, ge=1, description="Token requests per client per window.")
    rate_limit_failure_mode: Literal["open", "closed"] = Field(
        default="closed",
        description="When Redis is unreachable: 'open' admits every request, 'closed' answers 503.",
    )

    auth_failures_per_client: int = Field(default=10, ge=1, description="Failed client auths per id per window.")
    auth_failures_per_address: int = Field(default=30, ge=1, description="Failed client auths per address.")
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    audit_refusals_per_source: int = Field(default=20, ge=1, description="Audited auth refusals per address/window.")
    audit_refusals_total: int = Field(default=200, ge=1, description="Audited auth refusals per worker per window.")

    audit_checkpoint_seconds: float = Field(default=300.0, gt=0)

    # Subscriptions (gateway.subscriptions): webhook delivery and the event stream.
    delivery_in_process: bool = Field(default=True, description="Run webhook delivery inside each hub process.")
    webhook_allow_private: bool = Field(
        default=False, description="Allow webhook URLs on private, loopback or link-local addresses (outside demo)."
    )
    webhook_timeout: float = Field(default=10.0, gt=0, description="Seconds a receiver has to answer a delivery.")
    delivery_batch_size: int = Field(default=500, ge=1, le=1000, description="Most changes in one delivery.")
    delivery_concurrency: int = Field(default=16, ge=1, description="Subscriptions one process delivers at once.")
    delivery_lease_seconds: float = Field(default=30.0, gt=0, description="How long a claim on a subscription lasts.")
    delivery_poll_seconds: float = Field(default=0.1, gt=0, description="How often delivery looks for new changes.")
    delivery_backoff_base: float = Field(default=1.0, gt=0, description="First retry delay, seconds (doubles).")
    delivery_backoff_max: float = Field(default=300.0, gt=0, description="Longest retry delay, seconds.")
    delivery_failure_window: float = Field(
        default=86_400.0, gt=0, description="Seconds of failing deliveries before a subscription is marked failed."
    )
    secret_rotation_overlap: float = Field(
        default=86_400.0, ge=0, description="Seconds a rotated webhook secret still signs next to the new one."
    )
    nats_url: str | None = Field(default=None, description="Also publish committed changes to NATS JetStream here.")
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0, description="SSE comment line interval.")
    stream_stall_seconds: float = Field(default=30.0, gt=0, description="Cut off an SSE consumer stalled this long.")

    otlp_endpoint: str | None = None
    service_name: str = "qala-gateway"

    @model_validator(mode="after")
    def _refuse_unsafe_configuration(self) -> Settings:
        self.home = resolve_home(self.home)
        self.database_url = self.database_url or Home(self.home).database_url
        self.issuer = self.issuer.rstrip("/")
        self.audience = self.audience or f"{self.issuer}/api/v1"
        secret = self.secret_key.get_secret_value()
        if self.env == "demo":
            if not secret:
                self.secret_key = SecretStr(DEMO_SECRET)
            return self
        if not secret or secret == DEMO_SECRET:
            raise ValueError(f"QALA_SECRET_KEY must be set to a private value when QALA_ENV={self.env}")
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"QALA_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters")
        if self.env == "production" and not self.issuer.startswith("https://"):
            raise ValueError("QALA_ISSUER must be an https:// URL when QALA_ENV=production")
        return self

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth/token"

    @property
    def secret(self) -> bytes:
        return self.secret_key.get_secret_value().encode()
