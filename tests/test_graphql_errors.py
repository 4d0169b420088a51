"""A resolver that fails shows a generic message: no SQL, no stack trace, no value."""

import logging

import pytest

from api.settings import Settings
from catalogue import Catalogue
from domain.leases import Leases
from domain.principals import Customer
from domain.services import Services
from schema import build_schema
from schema.build import GENERIC
from schema.context import Context
from stores.deployment import Deployment
from stores.registry import Stores
from stores.seed import subject_id


async def test_a_failing_store_is_masked(
    settings: Settings,
    deployment: Deployment,
    catalogue: Catalogue,
    stores: Stores,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = await Stores.open(deployment.stores, catalogue, deployment.service_dsn)
    await broken.close()  # every query now fails inside asyncpg
    services = Services(settings.rules(), catalogue, broken, stores.subjects.pool, Leases("unused"))
    principal = Customer(
        "https://issuer.test", "alice", subject_id("alice"), frozenset({"dsar:self"})
    )
    schema = build_schema(catalogue)
    with caplog.at_level(logging.ERROR):
        result = await schema.execute(
            "{ me { profile { email } } }",
            context_value=Context(services, principal, request_id="0123456789abcdef"),
        )
    assert result.errors is not None
    assert [e.message for e in result.errors] == [GENERIC]
    # The message promises a request id: the error carries it.
    assert [e.extensions for e in result.errors] == [
        {"code": "INTERNAL_SERVER_ERROR", "requestId": "0123456789abcdef"}
    ]
    assert result.data == {"me": {"profile": None}}
    logged = " ".join(r.getMessage() + str(getattr(r, "error", "")) for r in caplog.records)
    assert "resolver failed" in logged
    assert "SELECT" not in logged
    assert "alice" not in logged
    assert all(r.exc_info is None for r in caplog.records)
