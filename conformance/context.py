"""What every check works with during a run: the profile, the module's URL, the issuer, the data.

ctx.get(ctx.collection_path, token=ctx.token())            # a recorded, authorised request
ctx.token(scopes=["read"], cities=["astana"])              # short scope names expand to <collection>:<name>
ctx.token()                                                 # every scope, both cities of the run
ctx.seeded()                                                # the entities read back after seeding
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from conformance.http import RecordingClient
from conformance.issuer import SuiteIssuer
from conformance.outcomes import CheckOmitted, CheckSkipped
from conformance.results import Exchange
from schemas import SchemaVersion

JsonObject = dict[str, Any]
ALL_SCOPES = ("read", "write", "read-personal")


@dataclass
class RunContext:
    """State shared by the checks of one run; built and filled in by the runner."""

    profile: SchemaVersion
    mandate: JsonObject
    client: RecordingClient
    issuer: SuiteIssuer
    audience: str
    run_id: str
    city: str
    other_city: str
    read_only: bool = False
    openapi_body: bytes = b""
    openapi_response: httpx.Response | None = None
    openapi_exchange: Exchange | None = None
    """The recorded GET /openapi.json of the run's start, shown as the evidence of every discovery test."""
    written: list[JsonObject] = field(default_factory=list)
    """The entities as the suite wrote them (or the fixture's entities in read-only mode)."""
    stored: dict[str, JsonObject] = field(default_factory=dict)
    """The same entities as the module served them back (with full read access), by id."""
    seed_problem: str = ""
    created: set[str] = field(default_factory=set)
    """Every id the suite may have created, deleted at the end of the run."""
    answers: dict[str, tuple[httpx.Response, Exchange]] = field(default_factory=dict)
    """Answers to the bad inputs, by probe name, kept for the tests that look at them again."""
    targets: dict[str, JsonObject] = field(default_factory=dict)
    """One entity per city that refused writes aim at (see :mod:`conformance.checks.operations`)."""

    @property
    def collection(self) -> str:
        return self.profile.collection

    @property
    def collection_path(self) -> str:
        return f"/{self.collection}"

    def entity_path(self, entity_id: str) -> str:
        return f"/{self.collection}/{quote(entity_id, safe='')}"

    @property
    def cities(self) -> tuple[str, str]:
        """The two cities of the run: seeds alternate between them, tokens are minted for one, the other or both."""
        return (self.city, self.other_city)

    def scopes(self, scopes: tuple[str, ...] | list[str] = ALL_SCOPES) -> list[str]:
        return [scope if ":" in scope else f"{self.collection}:{scope}" for scope in scopes]

    def token(self, scopes: tuple[str, ...] | list[str] = ALL_SCOPES, cities: list[str] | None = None) -> str:
        """A valid token of the suite's issuer for this module's audience (both cities unless told)."""
        return self.issuer.mint(audience=self.audience, scopes=self.scopes(scopes), cities=cities or list(self.cities))

    @staticmethod
    def bearer(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, *, token: str | None, params: dict[str, str] | None = None) -> httpx.Response:
        return self.client.request(
            "GET", path, headers={**self.bearer(token), "Accept": "application/json"}, params=params
        )

    def send(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {**self.bearer(token), "Accept": "application/json", **(headers or {})}
        if content is not None:
            return self.client.request(method, path, headers=all_headers, content=content)
        return self.client.request(method, path, headers=all_headers, json=body)

    def require_writes(self) -> None:
        if self.read_only:
            raise CheckOmitted("the run is read-only (--fixture): write operations are not tested")

    def seeded_in(self, city: str) -> list[JsonObject]:
        return [entity for entity in self.seeded() if entity.get("city") == city]

    def seeded(self) -> list[JsonObject]:
        """The seeded entities as served back; skips the test when seeding did not work."""
        if self.seed_problem or not self.stored:
            raise CheckSkipped(f"no test data to work on: {self.seed_problem or 'nothing was seeded'}")
        return [self.stored[entity["id"]] for entity in self.written if entity["id"] in self.stored]

    def new_entity_id(self, name: str, city: str | None = None) -> str:
        entity_id = f"urn:ngsi-ld:{self.profile.type_name}:{city or self.city}:qct-{self.run_id}-{name}"
        self.created.add(entity_id)
        return entity_id
