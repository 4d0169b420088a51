-- Requests without an account (issue 17, items 3 and 4): the single-use links that confirm an
-- address, or a person's permission for an authorized agent, and who the agent is.
--
-- A link's secret is sent once, in an e-mail, and kept here only as its SHA-256: a copy of this
-- table opens nothing. A link works once and for a short time. `subject_id` is the person the
-- address matched in the company's records when the request came in (NULL when none did): it
-- becomes the request's only once the link is followed, so an address someone merely typed
-- never joins a request to a person. The address itself is not kept.
CREATE TABLE request_links (
    hash        bytea PRIMARY KEY CHECK (octet_length(hash) = 32),
    request_id  uuid NOT NULL REFERENCES requests (id),
    purpose     text NOT NULL CHECK (purpose IN ('verify', 'agent_confirm')),
    subject_id  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX request_links_request ON request_links (request_id);

-- An authorized agent (CCPA regulations §7063): their name and address, as they gave them.
ALTER TABLE requests ADD COLUMN agent jsonb;

GRANT SELECT, INSERT, UPDATE ON request_links TO dsar_app;
