"""A demo person's records, in the catalogue's terms, as the demo company's own rows.

This is the reverse of stores/demo.toml: what that file maps from the company's tables onto the
catalogue, this writes from the catalogue's records into the company's tables, so the seed
stays readable as people and the stores stay shaped as a company keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

if TYPE_CHECKING:
    from stores.seed import SubjectData

Table = tuple[str, str]  # (store, table)
Rows = tuple[list[str], list[tuple[Any, ...]]]

SHARED_COOKIE = "ajs-family-laptop"
COOKIE_NAMESPACE = UUID("0b7e7a52-3c1f-4d57-a0a4-5d3f3f2b9c11")

_EVENT_COLUMNS = [
    "anonymous_id",
    "ts",
    "session_id",
    "url",
    "event_type",
    "element",
    "referrer",
    "duration_ms",
]


def cookie_ids(data: SubjectData) -> list[str]:
    """The person's own cookie ids: one per device they were seen on."""
    return [r["cookie_id"] for r in data.rows.get("device", [])] or [
        str(uuid5(COOKIE_NAMESPACE, str(data.user_id)))
    ]


def customer_id(data: SubjectData) -> str | None:
    return f"cus_{data.user_id:08d}" if data.rows.get("payment") else None


def company_rows(data: SubjectData) -> dict[Table, Rows]:
    uid = data.user_id
    profile = data.rows["profile"][0]
    ident = data.rows["identifiers"][0]
    out: dict[Table, Rows] = {}
    out[("app", "users")] = (
        [
            "id",
            "email",
            "username",
            "given_name",
            "family_name",
            "phone",
            "password_hash",
            "security_question",
            "security_answer_hash",
            "billing_customer",
            "signed_up_at",
            "profile_updated_at",
        ],
        [
            (
                uid,
                profile["email"],
                ident["username"],
                profile["first_name"],
                profile["last_name"],
                profile["phone"],
                ident["password_hash"],
                ident["security_question"],
                ident["security_answer_hash"],
                customer_id(data),
                ident["created_at"],
                profile["updated_at"],
            )
        ],
    )
    out[("app", "addresses")] = (
        ["user_id", "street", "city", "region", "postal_code", "country_code"],
        [
            (
                uid,
                profile["street"],
                profile["city"],
                profile["region"],
                profile["postal_code"],
                profile["country"],
            )
        ],
    )
    out[("app", "user_settings")] = (
        [
            "user_id",
            "functional_cookies",
            "analytics_cookies",
            "ad_cookies",
            "newsletter",
            "do_not_sell",
            "locale",
            "changed_at",
        ],
        [
            (
                uid,
                p["functional_cookies"],
                p["analytics_cookies"],
                p["advertising_cookies"],
                p["marketing_emails"],
                p["do_not_sell_or_share"],
                p["language"],
                p["updated_at"],
            )
            for p in data.rows["preferences"]
        ],
    )
    out[("app", "identity_documents")] = (
        ["user_id", "doc_type", "doc_number", "collected_at"],
        [(uid, r["kind"], r["value"], r["collected_at"]) for r in data.rows.get("sensitive", [])],
    )
    cookies = cookie_ids(data)
    out[("analytics", "identifies")] = (
        ["anonymous_id", "user_id", "identified_at"],
        [(c, uid, profile["updated_at"]) for c in [*cookies, *data.shared_cookies]],
    )
    out[("analytics", "devices")] = (
        [
            "anonymous_id",
            "ip",
            "user_agent",
            "device_id",
            "isp",
            "first_seen",
            "last_seen",
        ],
        [
            (
                r["cookie_id"],
                r["ip_address"],
                r["user_agent"],
                r["device_id"],
                r["isp"],
                r["first_seen"],
                r["last_seen"],
            )
            for r in data.rows.get("device", [])
        ],
    )
    out[("analytics", "page_events")] = _events(cookies[0], data.rows.get("web_analytics", []))
    out[("analytics", "geo_lookups")] = (
        [
            "anonymous_id",
            "observed_at",
            "ip",
            "city",
            "region",
            "postal_code",
            "country",
            "time_zone",
        ],
        [
            (
                cookies[-1],
                r["observed_at"],
                r["ip_address"],
                r["city"],
                r["region"],
                r["postal_code"],
                r["country"],
                r["time_zone"],
            )
            for r in data.rows.get("geolocation", [])
        ],
    )
    out[("billing", "bank_accounts")] = (
        [
            "customer",
            "holder_name",
            "bank_name",
            "account_number",
            "routing_number",
            "purpose",
            "created",
        ],
        [
            (
                customer_id(data),
                r["account_holder"],
                r["bank_name"],
                r["account_number"],
                r["routing_number"],
                r["purpose"],
                r["created_at"],
            )
            for r in data.rows.get("payment", [])
        ],
    )
    out[("crm", "contacts")] = (
        ["id", "email", "company", "job_title", "updated_at"],
        [
            (uid, profile["email"], r["company_name"], r["job_title"], r["updated_at"])
            for r in data.rows.get("professional", [])
        ],
    )
    out[("crm", "messages")] = (
        ["id", "contact_email", "channel", "subject", "body", "received_at"],
        [
            (
                uid * 100 + i,
                profile["email"],
                r["channel"],
                r["title"],
                r["body"],
                r["submitted_at"],
            )
            for i, r in enumerate(data.rows.get("provided", []))
        ],
    )
    return out


def _events(cookie: str, events: Iterable[dict[str, Any]]) -> Rows:
    return (_EVENT_COLUMNS, list(_event_tuples(cookie, events)))


def _event_tuples(cookie: str, events: Iterable[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for e in events:
        yield (
            cookie,
            e["occurred_at"],
            e["session_id"],
            e["page_url"],
            e["action"],
            e["element"],
            e["referrer"],
            e["duration_ms"],
        )


def event_rows(
    cookie: str, events: Iterable[dict[str, Any]]
) -> tuple[str, str, list[str], Iterator[tuple[Any, ...]]]:
    """Page events for `write_rows`, streamed (a million of them never sit in a list)."""
    return ("analytics", "page_events", _EVENT_COLUMNS, _event_tuples(cookie, events))


def shared_events() -> tuple[str, str, list[str], Iterator[tuple[Any, ...]]]:
    """A few page views on the family computer bob and carol both signed in on."""
    from stores.seed import web_events  # the seed's own generator, for the same shape

    return event_rows(SHARED_COOKIE, web_events(4242, 3))


__all__ = ["SHARED_COOKIE", "company_rows", "cookie_ids", "customer_id", "event_rows"]
