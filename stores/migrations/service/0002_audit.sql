-- The audit log as an append-only hash chain, kept by the database itself (issue 7, item 4).
--
-- Rows are written only by audit_append(), which serialises writers, numbers rows without gaps
-- and stores hash = sha256(prev_hash || audit_canonical(row)). api/audit.py recomputes the same
-- canonical text in Python (`dsar audit verify`); the two must stay byte for byte identical.
--
-- How a deployment connects: the migrations run as the owner of the service database (the
-- owner owns this table and the SECURITY DEFINER function). The API connects as a login role
-- that is a member of dsar_app and nothing more, for example
--     CREATE ROLE dsar_api LOGIN PASSWORD '…' IN ROLE dsar_app;
--     ALTER ROLE dsar_api SET role = 'dsar_app';
-- with DSAR_DATABASE_URL=postgresql://dsar_api:…@host/dsar. That role can SELECT the log and
-- call audit_append(), and nothing else on it: it cannot insert directly, UPDATE, DELETE,
-- TRUNCATE, disable the triggers (only the owner can) or drop the table. Each later migration
-- grants dsar_app what it needs on its own tables. The demo and the tests connect as the owner.

-- Roles are cluster-wide and several databases (test runs) may migrate at once on one server:
-- create the role only when missing, and take a concurrent creation as success.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dsar_app') THEN
        CREATE ROLE dsar_app NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;  -- another session created it between our check and our CREATE
END
$$;

-- Sequence numbers come from the chain (last seq + 1 under the lock), not from an identity:
-- a sequence hands out numbers that a rolled-back transaction leaves as gaps, and verify
-- treats a gap as a removed row.
ALTER TABLE audit_log ALTER COLUMN seq DROP IDENTITY IF EXISTS;
ALTER TABLE audit_log
    ADD CONSTRAINT audit_log_hash_hex CHECK (hash ~ '^[0-9a-f]{64}$' AND prev_hash ~ '^[0-9a-f]{64}$');

-- One field of the canonical text: NULL is '-', a value is its UTF-8 length, ':' and itself.
-- Every piece is self-delimiting, so no value can be read as two and no separator needs escaping.
-- This and audit_canonical() carry no SET search_path so the planner can inline them (4x faster);
-- they name only pg_catalog functions and schema-qualified ones of ours, and inside
-- audit_append() they run under its fixed search_path.
CREATE FUNCTION audit_field(p_value text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN p_value IS NULL THEN '-'
                ELSE octet_length(convert_to(p_value, 'UTF8'))::text || ':' || p_value END
$$;

-- A flat object of strings: 'M', the key count, ':', then key and value fields by key in
-- code point order (COLLATE "C" compares UTF-8 bytes, which is code point order).
CREATE FUNCTION audit_map(p_map jsonb) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    body text;
BEGIN
    IF jsonb_typeof(p_map) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'audit: a map must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_each(p_map) e WHERE jsonb_typeof(e.value) <> 'string') THEN
        RAISE EXCEPTION 'audit: map values must be strings' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(string_agg(public.audit_field(e.key) || public.audit_field(e.value), '' ORDER BY e.key COLLATE "C"), '')
      INTO body FROM jsonb_each_text(p_map) e;
    RETURN 'M' || (SELECT count(*) FROM jsonb_object_keys(p_map))::text || ':' || body;
END
$$;

-- The canonical text of one row ('v1' names this layout). The time is UTC with microseconds,
-- written with to_char so that DateStyle and TimeZone of the session cannot change it.
CREATE FUNCTION audit_canonical(
    p_seq bigint, p_at timestamptz, p_request_id text, p_actor jsonb, p_subject_id uuid,
    p_action text, p_purpose jsonb, p_categories text[], p_outcome text
) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT 'v1;'
        || public.audit_field(p_seq::text)
        || public.audit_field(to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || public.audit_field(p_request_id)
        || public.audit_map(p_actor)
        || public.audit_field(p_subject_id::text)
        || public.audit_field(p_action)
        || public.audit_map(p_purpose)
        || 'L' || cardinality(p_categories)::text || ':'
        || coalesce((SELECT string_agg(public.audit_field(c), '' ORDER BY n)
                     FROM unnest(p_categories) WITH ORDINALITY AS u (c, n)), '')
        || public.audit_field(p_outcome)
$$;

-- The one way in. SECURITY DEFINER with a fixed search_path (pg_catalog first, pg_temp last,
-- every object of ours schema-qualified) so a caller's search_path cannot substitute anything.
CREATE FUNCTION audit_append(
    p_request_id text, p_actor jsonb, p_subject_id uuid, p_action text,
    p_purpose jsonb, p_categories text[], p_outcome text
) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prev text;
    v_seq bigint;
    v_at timestamptz;
    v_purpose jsonb := coalesce(p_purpose, '{}'::jsonb);
    v_categories text[] := coalesce(p_categories, '{}'::text[]);
BEGIN
    IF p_request_id IS NULL OR p_request_id = '' OR length(p_request_id) > 200 THEN
        RAISE EXCEPTION 'audit: request id must be 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_action IS NULL OR p_action !~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)*$' THEN
        RAISE EXCEPTION 'audit: malformed action' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_actor->>'kind' IS NULL OR p_actor->>'kind' NOT IN ('customer', 'partner', 'support', 'anonymous') THEN
        RAISE EXCEPTION 'audit: unknown actor kind' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Category names only, never values: a name is a short identifier.
    IF EXISTS (SELECT 1 FROM unnest(v_categories) c
               WHERE c IS NULL OR c !~ '^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})?$') THEN
        RAISE EXCEPTION 'audit: categories must be names' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Writers queue here until the holder's transaction ends; the key is this database's only.
    PERFORM pg_advisory_xact_lock(7238236170003768436);  -- 'dsaraudt' as a bigint
    -- A fresh snapshot (READ COMMITTED) now sees the last committed row. Under REPEATABLE READ a
    -- stale snapshot would reuse a seq and fail on the primary key: it never forks the chain.
    SELECT l.seq, l.hash INTO v_seq, v_prev FROM public.audit_log l ORDER BY l.seq DESC LIMIT 1;
    v_seq := coalesce(v_seq, 0) + 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    v_at := clock_timestamp();

    INSERT INTO public.audit_log
        (seq, at, request_id, actor, subject_id, action, purpose, categories, outcome, prev_hash, hash)
    VALUES (
        v_seq, v_at, p_request_id, p_actor, p_subject_id, p_action, v_purpose, v_categories, p_outcome,
        v_prev,
        encode(sha256(convert_to(v_prev || public.audit_canonical(
            v_seq, v_at, p_request_id, p_actor, p_subject_id, p_action, v_purpose, v_categories,
            p_outcome), 'UTF8')), 'hex')
    );
    RETURN v_seq;
END
$$;

-- The database refuses changes to written rows, whoever asks (the owner and superusers too;
-- only disabling the triggers, which needs ownership, gets past this, and verify sees that).
CREATE FUNCTION audit_log_refuse() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();

REVOKE ALL ON audit_log FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_append(text, jsonb, uuid, text, jsonb, text[], text) FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO dsar_app;
GRANT SELECT ON audit_log TO dsar_app;
GRANT EXECUTE ON FUNCTION audit_append(text, jsonb, uuid, text, jsonb, text[], text) TO dsar_app;
GRANT SELECT, INSERT, UPDATE ON exports TO dsar_app;
