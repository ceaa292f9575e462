"""A light latency check (SHOULD): reads answer within a second. It is advice, never a blocker."""

from __future__ import annotations

import statistics
import time

from conformance.checks.common import expect_status
from conformance.checks.registry import check
from conformance.context import RunContext
from conformance.outcomes import expect

CEILING_MS = 1000.0
SAMPLES = 5


@check("QM-PERF-001", "read-latency")
def read_latency(ctx: RunContext, param: str) -> str:
    token = ctx.token()
    timings = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        response = ctx.get(ctx.collection_path, token=token, params={"limit": "100"})
        timings.append((time.perf_counter() - started) * 1000)
        expect_status(response, 200, "a page of 100")
    median = statistics.median(timings)
    expect(
        median <= CEILING_MS,
        f"the median of {SAMPLES} list reads is {median:.0f} ms",
        expected=f"at most {CEILING_MS:.0f} ms",
    )
    return f"median {median:.0f} ms over {SAMPLES} reads"
