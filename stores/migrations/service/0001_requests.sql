-- The service's own database: export requests and the audit log.
CREATE TABLE exports (
    id               uuid PRIMARY KEY,
    subject_id       uuid NOT NULL,
    requested_by     jsonb NOT NULL,
    purpose          text NOT NULL CHECK (purpose IN ('access', 'portability')),
    format           text NOT NULL CHECK (format IN ('json', 'csv')),
    categories       text[] NOT NULL,
    verification     jsonb NOT NULL,
    status           text NOT NULL CHECK (status IN ('ready', 'running', 'completed', 'failed', 'expired')),
    failure          text,
    records          bigint,
    bytes            bigint,
    sha256           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    expires_at       timestamptz NOT NULL
);
CREATE INDEX exports_subject ON exports (subject_id, created_at);

CREATE TABLE audit_log (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    request_id   text NOT NULL,
    actor        jsonb NOT NULL,
    subject_id   uuid,
    action       text NOT NULL,
    purpose      jsonb NOT NULL DEFAULT '{}'::jsonb,
    categories   text[] NOT NULL DEFAULT '{}',
    outcome      text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
    prev_hash    text NOT NULL,
    hash         text NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject_id, seq);
