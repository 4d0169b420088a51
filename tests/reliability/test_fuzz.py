"""schemathesis against the live schema of a running server, with valid tokens of every kind.

Queries and mutations are generated from the SDL the server itself serves (introspection is
off outside dev, so the schema comes from `build_schema`, the very object the app runs), both
valid ones and ones with wrong argument values. Every answer: no 5xx, no stack trace or driver
text, no generic "something went wrong" (an exception a resolver did not expect), and no
marker of a subject other than the caller.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from catalogue import Catalogue
from schema import build_schema
from schema.build import GENERIC
from tests.reliability._checks import TRACE_WORDS
from tests.reliability.conftest import Population, ServerFactory

FAST_EXAMPLES = 120
SOAK_EXAMPLES = int(os.environ.get("DSAR_SOAK_FUZZ_EXAMPLES", "3000"))


@dataclass(frozen=True, slots=True)
class Caller:
    kind: str
    token: str
    others: tuple[str, ...]


def callers(population: Population) -> list[Caller]:
    every = tuple(population.markers)
    return [
        *(Caller("customer", s.token, tuple(population.others(s))) for s in population.subjects),
        Caller("support", population.support_token, every),
        Caller("partner", population.partner_token, every),
    ]


def problem(response: httpx.Response, caller: Caller) -> str | None:
    body = response.text
    if response.status_code >= 500:
        return f"HTTP {response.status_code}"
    for word in TRACE_WORDS:
        if word in body:
            return f"{word!r} in the body"
    for marker in caller.others:
        if marker in body:
            return "another subject's marker in the body"
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "a body that is not JSON"
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if any(isinstance(e, dict) and e.get("message") == GENERIC for e in errors or ()):
        return "a resolver failed unexpectedly (generic masked error)"
    return None


def fuzz(url: str, sdl: str, population: Population, examples: int, derandomize: bool) -> int:
    schema = schemathesis.graphql.from_file(sdl)
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)
    )
    sent = [0]

    with httpx.Client(base_url=url, timeout=30) as client:

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=derandomize,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases, caller=st.sampled_from(callers(population)))
        def one(case: schemathesis.Case, caller: Caller) -> None:
            response = client.post(
                "/graphql",
                json={"query": case.body},
                headers={"Authorization": f"Bearer {caller.token}"},
            )
            sent[0] += 1
            found = problem(response, caller)
            assert found is None, f"{found}: {caller.kind} sent {case.body!r}"

        one()
    return sent[0]


async def _run(
    start_server: ServerFactory,
    population: Population,
    catalogue: Catalogue,
    examples: int,
    derandomize: bool,
) -> None:
    server = await start_server()
    sdl = build_schema(catalogue).as_str()  # what the server runs: dev off, as in production
    sent = await asyncio.to_thread(fuzz, server.url, sdl, population, examples, derandomize)
    print(f"\nfuzzing: {sent} generated operations, none answered badly")
    assert sent >= examples


async def test_fuzz_the_live_schema(
    start_server: ServerFactory, population: Population, catalogue: Catalogue
) -> None:
    # Derandomized: `make test` tries the same examples on every run, so CI is repeatable.
    await _run(start_server, population, catalogue, FAST_EXAMPLES, derandomize=True)


@pytest.mark.soak
async def test_fuzz_the_live_schema_long(
    start_server: ServerFactory, population: Population, catalogue: Catalogue
) -> None:
    await _run(start_server, population, catalogue, SOAK_EXAMPLES, derandomize=False)
