"""The running service: health, readiness, metrics, the edge middleware."""

import re

import httpx


async def test_healthz(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "alive"}
    assert len(r.headers["x-request-id"]) == 16


async def test_readyz_checks_every_store(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200, r.json()  # which check failed (once in CI, under load)
    assert r.json()["checks"] == {
        "app": True,
        "analytics": True,
        "billing": True,
        "crm": True,
        "media": True,
        "service": True,
        "keys": True,
    }


async def test_metrics_name_routes_not_values(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    await client.get("/no-such-path/alice@example.com")
    text = (await client.get("/metrics")).text
    assert 'dsar_http_requests_total{route="/healthz",status="200"}' in text
    assert 'route="unmatched"' in text
    assert "alice" not in text


async def test_metrics_show_the_export_budget(client: httpx.AsyncClient) -> None:
    """What an operator tuning DSAR_EXPORT_SHARE reads (domain/budget.py)."""
    text = (await client.get("/metrics")).text
    for name in [
        "dsar_export_gave_way_total",
        "dsar_small_requests_in_flight",
        "dsar_export_pace_bytes_per_second",
    ]:
        assert re.search(rf"^{name} [0-9.e+]+$", text, re.MULTILINE), name


async def test_a_body_over_the_cap_is_413(client: httpx.AsyncClient) -> None:
    r = await client.post("/healthz", content=b"x" * (1024 * 1024 + 1))
    assert r.status_code == 413
    assert r.json() == {
        "error": "request_too_large",
        "errors": [
            {
                "message": "The request body is larger than allowed.",
                "extensions": {"code": "REQUEST_TOO_LARGE"},
            }
        ],
    }
