"""Settings, read once from the environment at start-up and passed down explicitly."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from api.admission import QUEUE, SLOTS, WAIT
from domain.budget import ACTIVE, SHARE
from domain.rules import Rules
from domain.services import EXPORT_TURNS, EXPORT_WAIT
from stores.deployment import Deployment, locate

DEV_ISSUER = "urn:dsar:dev-issuer"
DEFAULT_AUDIENCE = "urn:dsar:api"


_RULES = Rules()


class SettingsError(Exception):
    """A configuration value that cannot be used; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    database_url: str | None = None
    # The owner's URL: migrations run with it, the service never does.
    owner_database_url: str | None = None
    stores_file: Path | None = None
    # The demo company's CRM on this MySQL server instead of the embedded PostgreSQL.
    demo_mysql_url: str | None = None
    catalogue_file: Path | None = None
    issuers: tuple[str, ...] = ()
    # The workforce's issuer (agents and privacy staff); None: see api/issuers.py.
    support_issuer: str | None = None
    audience: str = DEFAULT_AUDIENCE
    dev_issuer: bool = False
    secret_key: bytes = field(default=b"", repr=False)
    # The limits of the rules: their defaults are `Rules`'s own.
    step_up_acr_values: tuple[str, ...] = _RULES.step_up_acr_values
    step_up_max_age: int = _RULES.step_up_max_age
    export_link_ttl: int = _RULES.export_link_ttl
    downloads_per_link: int = _RULES.downloads_per_link
    exports_per_day: int = _RULES.exports_per_day
    partner_transfers_per_minute: int = _RULES.partner_transfers_per_minute
    grant_transfers_per_day: int = _RULES.grant_transfers_per_day
    support_subjects_per_hour: int = _RULES.support_subjects_per_hour
    max_body_bytes: int = 1024 * 1024
    # Seconds a client has to send a request's headers, then its body (408 and closed past it).
    header_timeout: int = 10
    body_timeout: int = 30
    # Exports streaming at once per process, and seconds one waits for its turn (domain/turns.py).
    export_streams: int = EXPORT_TURNS
    export_wait: int = int(EXPORT_WAIT)
    # Of those, how many work at once, and their share of the time while small requests are in
    # flight (domain/budget.py).
    export_active: int = ACTIVE
    export_share: float = SHARE
    # Requests executing at once per process, how many more may wait for a slot, and seconds one
    # waits before it is refused with 503 + Retry-After (api/admission.py).
    admission_slots: int = SLOTS
    admission_queue: int = QUEUE
    admission_wait: float = WAIT
    # Customer tokens may run only the account page's registered operations (api/trusted.py).
    trusted_documents_only: bool = False
    # The account page (/account) logs people in as an OAuth client of the first issuer.
    account_client_id: str | None = None
    account_client_secret: str = field(default="", repr=False)
    account_session_ttl: int = 30 * 60
    # The Ed25519 key (its 32-byte seed) that signs audit checkpoints, and how often (0: never).
    audit_signing_key: bytes = field(default=b"", repr=False)
    audit_checkpoint_interval: int = 300
    # OpenTelemetry: spans are exported over OTLP only when an endpoint is set.
    otel_endpoint: str | None = None
    # E-mail to people about their requests: `smtp://host:port` (or `smtps://`); without it,
    # messages go to the log with the address and body left out.
    smtp_url: str | None = None
    mail_from: str = "privacy@localhost"
    # Where people reach this service from outside: the links in e-mails point here. Where
    # DSAR_PUBLIC_URL is not set (`public_url_set`), `dsar serve` makes it the address it serves.
    public_url: str = "http://127.0.0.1:8000"
    public_url_set: bool = False

    @property
    def dev_mode(self) -> bool:
        """Introspection and the demo conveniences are only on with the dev issuer."""
        return self.dev_issuer

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        return (*self.issuers, DEV_ISSUER) if self.dev_issuer else self.issuers

    def locate(self) -> Deployment:
        """This deployment's databases and stores (starting the embedded server if it is one)."""
        return locate(
            self.home,
            self.database_url,
            self.stores_file,
            self.demo_mysql_url,
            owner_database_url=self.owner_database_url,
        )

    def rules(self) -> Rules:
        """What the domain needs of the settings, and no more."""
        return Rules(
            step_up_acr_values=self.step_up_acr_values,
            step_up_max_age=self.step_up_max_age,
            export_link_ttl=self.export_link_ttl,
            downloads_per_link=self.downloads_per_link,
            exports_per_day=self.exports_per_day,
            partner_transfers_per_minute=self.partner_transfers_per_minute,
            grant_transfers_per_day=self.grant_transfers_per_day,
            support_subjects_per_hour=self.support_subjects_per_hour,
            secret_key=self.secret_key,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("DSAR_HOME", ".dsar")).resolve()
        stores = env.get("DSAR_STORES")
        catalogue = env.get("DSAR_CATALOGUE")
        issuers = tuple(i.strip() for i in env.get("DSAR_OIDC_ISSUER", "").split(",") if i.strip())
        dev = env.get("DSAR_DEV_ISSUER", "") == "1"
        return cls(
            home=home,
            database_url=env.get("DSAR_DATABASE_URL") or None,
            owner_database_url=env.get("DSAR_OWNER_DATABASE_URL") or None,
            stores_file=Path(stores) if stores else None,
            demo_mysql_url=env.get("DSAR_DEMO_MYSQL_URL") or None,
            catalogue_file=Path(catalogue) if catalogue else None,
            issuers=issuers,
            support_issuer=env.get("DSAR_SUPPORT_ISSUER", "").strip() or None,
            audience=env.get("DSAR_AUDIENCE", DEFAULT_AUDIENCE),
            dev_issuer=dev,
            secret_key=_secret_key(env, home),
            audit_signing_key=_audit_signing_key(env, home),
            audit_checkpoint_interval=_interval(env, "DSAR_AUDIT_CHECKPOINT_INTERVAL", 300),
            step_up_acr_values=_acr_values(env),
            step_up_max_age=_int(env, "DSAR_STEP_UP_MAX_AGE", 15 * 60),
            export_link_ttl=_int(env, "DSAR_EXPORT_LINK_TTL", 7 * 24 * 3600),
            downloads_per_link=_int(env, "DSAR_DOWNLOADS_PER_LINK", _RULES.downloads_per_link),
            exports_per_day=_int(env, "DSAR_EXPORTS_PER_DAY", 5),
            partner_transfers_per_minute=_int(env, "DSAR_PARTNER_TRANSFERS_PER_MINUTE", 30),
            grant_transfers_per_day=_int(env, "DSAR_GRANT_TRANSFERS_PER_DAY", 10),
            support_subjects_per_hour=_int(env, "DSAR_SUPPORT_SUBJECTS_PER_HOUR", 30),
            header_timeout=_int(env, "DSAR_HEADER_TIMEOUT", 10),
            body_timeout=_int(env, "DSAR_BODY_TIMEOUT", 30),
            export_streams=_int(env, "DSAR_EXPORT_STREAMS", EXPORT_TURNS),
            export_wait=_int(env, "DSAR_EXPORT_WAIT", int(EXPORT_WAIT)),
            export_active=_int(env, "DSAR_EXPORT_ACTIVE", ACTIVE),
            export_share=_share(env, "DSAR_EXPORT_SHARE", SHARE),
            admission_slots=_int(env, "DSAR_ADMISSION_SLOTS", SLOTS),
            admission_queue=_int(env, "DSAR_ADMISSION_QUEUE", QUEUE),
            admission_wait=_seconds(env, "DSAR_ADMISSION_WAIT", WAIT),
            trusted_documents_only=env.get("DSAR_TRUSTED_DOCUMENTS_ONLY", "") == "1",
            account_client_id=env.get("DSAR_ACCOUNT_CLIENT_ID") or None,
            account_client_secret=env.get("DSAR_ACCOUNT_CLIENT_SECRET", ""),
            account_session_ttl=_int(env, "DSAR_ACCOUNT_SESSION_TTL", 30 * 60),
            otel_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
            smtp_url=_smtp_url(env.get("DSAR_SMTP_URL") or None),
            mail_from=env.get("DSAR_MAIL_FROM") or "privacy@localhost",
            public_url=(env.get("DSAR_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            public_url_set=bool(env.get("DSAR_PUBLIC_URL")),
        )


def _smtp_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018  # raises on a port that is not a number
    except ValueError:
        raise SettingsError("DSAR_SMTP_URL must be smtp://host:port or smtps://host:port") from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SettingsError("DSAR_SMTP_URL must be smtp://host:port or smtps://host:port")
    return raw


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive")
    return value


def _number(
    env: Mapping[str, str], name: str, default: float, ok: Callable[[float], bool], what: str
) -> float:
    """A decimal setting: `default` when unset; refused with `what` it must be unless `ok`."""
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {what}") from None
    if not ok(value):
        raise SettingsError(f"{name} must be {what}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, lambda v: 0 < v < 3600, "above 0 and below 3600 seconds")


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, lambda v: 0 < v <= 1, "a number above 0 and at most 1")


def _acr_values(env: Mapping[str, str]) -> tuple[str, ...]:
    """`DSAR_STEP_UP_ACR_VALUES`: the acr values (comma-separated) that count as a strong login,
    in the order a challenge prefers them (RFC 9470 section 3)."""
    raw = env.get("DSAR_STEP_UP_ACR_VALUES")
    if raw is None or not raw.strip():
        return _RULES.step_up_acr_values
    values = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
    # Each goes into a WWW-Authenticate challenge, space-separated and quoted (RFC 6750 3).
    if not values or any(not _ACR.fullmatch(v) for v in values):
        raise SettingsError(
            "DSAR_STEP_UP_ACR_VALUES must be acr values separated by commas, each printable "
            "ASCII without spaces, quotes or backslashes"
        )
    return values


_ACR = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def _secret_key(env: Mapping[str, str], home: Path) -> bytes:
    """Signs cursors and download links. Shared by all API processes of one deployment."""
    raw = env.get("DSAR_SECRET_KEY")
    if raw:
        if len(raw) < 32:
            raise SettingsError("DSAR_SECRET_KEY must be at least 32 characters")
        return raw.encode()
    path = home / "secret.key"
    if path.exists():
        return path.read_bytes()
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def _interval(env: Mapping[str, str], name: str, default: int) -> int:
    """Seconds, or 0 for never."""
    raw = env.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise SettingsError(f"{name} must be a whole number of seconds (0: never)")
    return int(raw)


def _audit_signing_key(env: Mapping[str, str], home: Path) -> bytes:
    """Signs the audit log's checkpoints: 32 random bytes in base64 (`openssl rand -base64 32`),
    kept outside the database. Without it, a key is made under DSAR_HOME (the demo's)."""
    raw = env.get("DSAR_AUDIT_SIGNING_KEY")
    source = "DSAR_AUDIT_SIGNING_KEY"
    path = home / "audit-signing.key"
    if not raw:
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(secrets.token_bytes(32)).decode())
        raw, source = path.read_text().strip(), str(path)
    try:
        text = raw.strip().replace("-", "+").replace("_", "/")
        seed = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        seed = b""
    if len(seed) != 32:
        raise SettingsError(
            f"{source} must be 32 bytes in base64 (make one with: openssl rand -base64 32)"
        )
    return seed
