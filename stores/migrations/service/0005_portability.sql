-- Portability (GDPR Art. 20): partner controllers, the grants people give them, and transfers.
--
-- A transfer is an export whose recipient is a partner and which names its grant. Grants are
-- read from here on every partner request, so a revocation holds from the next request on,
-- whatever tokens are still alive.
-- A partner is named by its OAuth client id, at exactly one issuer.
CREATE TABLE partners (
    client_id   text PRIMARY KEY,
    issuer      text NOT NULL,
    name        text NOT NULL,
    contact     text,
    categories  text[] NOT NULL,
    public_jwk  jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

CREATE TABLE grants (
    id               uuid PRIMARY KEY,
    subject_id       uuid NOT NULL,
    partner          text NOT NULL REFERENCES partners (client_id),
    categories       text[] NOT NULL,
    granted_by       jsonb NOT NULL,
    verification     jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX grants_subject ON grants (subject_id, created_at);
CREATE INDEX grants_partner ON grants (partner, expires_at);

ALTER TABLE exports
    ADD COLUMN grant_id uuid REFERENCES grants (id),
    ADD COLUMN since    timestamptz,
    ADD COLUMN generated_at timestamptz;
CREATE INDEX exports_grant ON exports (grant_id, created_at) WHERE grant_id IS NOT NULL;

-- The application role (0002_audit.sql) reads partners and keeps grants.
GRANT SELECT, INSERT, UPDATE ON partners, grants TO dsar_app;
