-- The account page's server-side sessions (api/account/, a backend-for-frontend).
--
-- The browser holds only a random session id in an HttpOnly cookie. This table holds the
-- SHA-256 of that id, so a copy of the table cannot be replayed as a cookie, and one sealed
-- blob (AES-256-GCM) with the tokens, the CSRF token and a login in progress, under a key
-- derived from the session id and the deployment secret: a copy of the table opens nothing.
CREATE TABLE account_sessions (
    id_hash     bytea PRIMARY KEY CHECK (octet_length(id_hash) = 32),
    sealed      bytea NOT NULL,
    signed_in   boolean NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now(),
    -- Idle expiry, moved forward on every use, never past `ends_at` (the access token's expiry).
    expires_at  timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    CHECK (expires_at <= ends_at)
);
-- Expired sessions are deleted when the next one is created.
CREATE INDEX account_sessions_expiry ON account_sessions (expires_at);

-- The application role (0002_audit.sql) keeps the sessions: it starts, reads, moves and ends them.
GRANT SELECT, INSERT, UPDATE, DELETE ON account_sessions TO dsar_app;
