-- DPoP proofs seen (RFC 9449 section 11.1): a proof's `jti` is accepted once, by whichever API
-- process gets it first, for as long as its `iat` could still be accepted. The id is a hash of
-- the key's thumbprint and the jti, so nothing a client sent is kept. No person's data.
CREATE TABLE dpop_proofs (
    id         bytea PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX dpop_proofs_expiry ON dpop_proofs (expires_at);
-- Nobody's data, so no row-level security: the service's role records and clears proofs.
GRANT SELECT, INSERT, UPDATE, DELETE ON dpop_proofs TO dsar_app;
