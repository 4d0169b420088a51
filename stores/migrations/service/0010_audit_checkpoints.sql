-- The audit log anchored outside the database (issue 18, item 4).
--
-- The hash chain (0002_audit.sql) shows an edited row, but not a chain cut short, nor one whose
-- hashes were all recomputed after an edit: whoever owns the database can do both. A checkpoint
-- is signed with an Ed25519 key that never enters the database (DSAR_AUDIT_SIGNING_KEY): it
-- holds the sequence number and hash of the head at the time, and the hash of every row since
-- the checkpoint before, so `dsar audit verify` names the first row that was removed, rewritten
-- or put in since (domain/checkpoints.py). Copies kept elsewhere (`dsar audit
-- export-checkpoints`) outlive checkpoints deleted here.

CREATE TABLE audit_checkpoints (
    seq        bigint PRIMARY KEY CHECK (seq > 0),    -- the head's seq
    prev_seq   bigint NOT NULL UNIQUE CHECK (prev_seq >= 0 AND prev_seq < seq),
    head_hash  text NOT NULL CHECK (head_hash ~ '^[0-9a-f]{64}$'),
    -- The hashes of rows prev_seq + 1 .. seq, 32 bytes each, in order.
    hashes     bytea NOT NULL CHECK (octet_length(hashes) = 32 * (seq - prev_seq)),
    at         timestamptz NOT NULL,
    key_id     text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    signature  bytea NOT NULL CHECK (octet_length(signature) = 64)
);

-- The service writes checkpoints only through this function: it checks that the checkpoint
-- continues the last one and describes rows as they are now (a signature it cannot check: the
-- public key is outside; verify checks it).
CREATE FUNCTION audit_checkpoint_add(
    p_seq bigint, p_prev_seq bigint, p_head_hash text, p_hashes bytea, p_at timestamptz,
    p_key_id text, p_signature bytea
) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_last bigint;
    v_rows bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(7238236170003768437);  -- one checkpoint writer at a time
    SELECT coalesce(max(c.seq), 0) INTO v_last FROM public.audit_checkpoints c;
    IF p_prev_seq IS DISTINCT FROM v_last THEN
        RAISE EXCEPTION 'audit checkpoint: it must continue the last one (seq %)', v_last
            USING ERRCODE = 'serialization_failure';
    END IF;
    SELECT string_agg(decode(l.hash, 'hex'), ''::bytea ORDER BY l.seq) INTO v_rows
      FROM public.audit_log l WHERE l.seq > p_prev_seq AND l.seq <= p_seq;
    IF v_rows IS DISTINCT FROM p_hashes
       OR NOT EXISTS (SELECT 1 FROM public.audit_log l WHERE l.seq = p_seq AND l.hash = p_head_hash) THEN
        RAISE EXCEPTION 'audit checkpoint: it does not describe the log as it is'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO public.audit_checkpoints (seq, prev_seq, head_hash, hashes, at, key_id, signature)
    VALUES (p_seq, p_prev_seq, p_head_hash, p_hashes, p_at, p_key_id, p_signature);
    RETURN p_seq;
END
$$;

-- Checkpoints are as append-only as the log they vouch for.
CREATE TRIGGER audit_checkpoints_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();

-- Rows go into the log only through audit_append(): it names the row it is about to insert in a
-- transaction-local setting, and this trigger refuses any INSERT that does not carry it, from
-- anyone (the owner and superusers too, while the trigger is enabled). Someone who owns the table
-- can still disable the trigger, or forge the setting: then the checkpoints show what they did
-- to any row a checkpoint covers.
CREATE FUNCTION audit_log_insert_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('dsar.audit_append', true) IS DISTINCT FROM NEW.seq::text THEN
        RAISE EXCEPTION 'audit_log rows are written by audit_append() only: INSERT refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('dsar.audit_append', '', true);  -- one row per call
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_only_by_append BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_insert_check();

-- audit_append() names its row just before inserting it. Patched in place, as 0014 does, so
-- what other migrations changed in its body stays whichever ran first.
DO $$
DECLARE
    v_def text;
    v_new text;
    v_insert constant text := '    INSERT INTO public.audit_log';
BEGIN
    SELECT pg_get_functiondef(p.oid) INTO v_def
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.proname = 'audit_append';
    IF v_def IS NULL OR strpos(v_def, v_insert) = 0 OR strpos(v_def, 'dsar.audit_append') > 0 THEN
        RAISE EXCEPTION 'audit_append() does not insert as expected'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    v_new := replace(v_def, v_insert,
        E'    PERFORM set_config(''dsar.audit_append'', v_seq::text, true);\n' || v_insert);
    EXECUTE v_new;
END
$$;

REVOKE ALL ON audit_checkpoints FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_checkpoint_add(bigint, bigint, text, bytea, timestamptz, text, bytea)
    FROM PUBLIC;
GRANT SELECT ON audit_checkpoints TO dsar_app;
GRANT EXECUTE ON FUNCTION audit_checkpoint_add(bigint, bigint, text, bytea, timestamptz, text, bytea)
    TO dsar_app;
