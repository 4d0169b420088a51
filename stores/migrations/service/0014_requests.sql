-- Requests as cases (issue 17): every access or portability request, whatever its channel, is
-- one row here, from receipt to its end, and kept at least 24 months (CCPA regulations §7101:
-- nothing in dsar deletes a request). Its exports point to it (`exports.request_id`); its
-- timeline is the audit log's rows that name it (`purpose->>'request'`), each written in the
-- same transaction as the change it records (domain/requests.py).
--
-- Deadlines come from catalogue/requests.toml, by the person's jurisdiction, computed in
-- `time_zone` at receipt: `acknowledge_by` (confirm receipt), `due_at` (answer), and
-- `extended_to` once staff extend it, never without a reason.
CREATE TABLE requests (
    id                  uuid PRIMARY KEY,
    -- NULL while a request made without an account matches no one (and for ever when it
    -- never does): the person's answer is the same either way.
    subject_id          uuid,
    kind                text NOT NULL CHECK (kind IN ('access', 'portability')),
    channel             text NOT NULL
        CHECK (channel IN ('account', 'support', 'public_form', 'agent', 'cli', 'partner')),
    jurisdiction        text NOT NULL CHECK (jurisdiction ~ '^[A-Z][A-Z0-9_]{0,31}$'),
    time_zone           text NOT NULL DEFAULT 'UTC',
    -- Who asked, as the audit log names actors (kind, issuer, sub; an operator's user name).
    requested_by        jsonb NOT NULL,
    status              text NOT NULL
        CHECK (status IN ('received', 'verifying', 'in_progress', 'in_review', 'completed',
                          'refused', 'withdrawn')),
    received_at         timestamptz NOT NULL DEFAULT now(),
    acknowledge_by      timestamptz NOT NULL,
    acknowledged_at     timestamptz,
    due_at              timestamptz NOT NULL,
    extended_to         timestamptz,
    extension_reason    text CHECK (length(extension_reason) BETWEEN 10 AND 500),
    -- How the person was verified (CCPA regulations §§7060-7062): a method such as
    -- `oidc_login`, and the degree it reached; never a document number.
    verification_method text,
    verification_degree text CHECK (verification_degree IN ('reasonable', 'reasonably_high')),
    verified_at         timestamptz,
    closed_at           timestamptz,
    refusal_basis       text,
    refusal_reason      text,
    CHECK (acknowledge_by >= received_at AND due_at >= received_at),
    CHECK ((extended_to IS NULL) = (extension_reason IS NULL)),
    CHECK (extended_to IS NULL OR extended_to > due_at),
    CHECK ((status IN ('completed', 'refused', 'withdrawn')) = (closed_at IS NOT NULL)),
    CHECK ((verification_degree IS NULL) = (verified_at IS NULL))
);
CREATE INDEX requests_subject ON requests (subject_id, received_at);
-- The open requests by the date they are due: the overdue list and gauge read only these.
CREATE INDEX requests_open_due ON requests ((coalesce(extended_to, due_at)))
    WHERE closed_at IS NULL;
CREATE INDEX requests_received ON requests (received_at);

ALTER TABLE exports ADD COLUMN request_id uuid REFERENCES requests (id);
CREATE INDEX exports_request ON exports (request_id) WHERE request_id IS NOT NULL;

-- A request's timeline: the audit rows that name it.
CREATE INDEX audit_log_request ON audit_log ((purpose->>'request'), seq)
    WHERE purpose ? 'request';

-- Three more kinds of actor in the audit log: privacy staff (`staff`), an operator at the
-- command line (`operator`), and dsar itself closing what a download finished (`service`).
-- audit_append() is patched where it lists the kinds, so whatever else an earlier migration
-- made of its body stays as it is; a body without that list fails this migration loudly.
DO $$
DECLARE
    v_def text;
    v_new text;
BEGIN
    SELECT pg_get_functiondef(p.oid) INTO v_def
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.proname = 'audit_append';
    v_new := replace(v_def, $k$('customer', 'partner', 'support', 'anonymous')$k$,
                     $k$('customer', 'partner', 'support', 'anonymous', 'staff', 'operator', 'service')$k$);
    IF v_def IS NULL OR v_new = v_def THEN
        RAISE EXCEPTION 'audit_append() does not list actor kinds as expected'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    EXECUTE v_new;
END
$$;

GRANT SELECT, INSERT, UPDATE ON requests TO dsar_app;
