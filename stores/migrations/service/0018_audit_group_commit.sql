-- Group commit for the audit log (issue 19, item 6).
--
-- audit_append() holds the chain's lock until its transaction ends, so stand-alone appends (a
-- refused attempt, a download refused, anything not written with a change of its own) went one
-- commit at a time: about a thousand a second for the whole company. A process now gathers the
-- appends that arrive while its previous batch commits (domain/_groupcommit.py) and writes them
-- with one call of audit_append_many(): one transaction, one wait for the lock, one read of the
-- chain's tail and one commit for the whole batch. Across processes the lock still orders the
-- batches, so there is one chain however many processes write.
--
-- Each row is what audit_append() would have written: the same checks (kept in step with it:
-- tests/test_audit_group_commit.py feeds both the same bad rows), numbered on from the tail,
-- `hash = sha256(prev_hash || audit_canonical(row))` hashed onto the row before it, and let in
-- by the insert trigger of 0010 one named row per INSERT. `dsar audit verify` and the signed
-- checkpoints cannot tell a batch from single appends. The batch is one transaction: it commits
-- whole or not at all.
--
-- p_rows is a JSON array of objects {request_id, actor, subject_id, action, purpose, categories,
-- outcome}; the result holds each row's seq, in the order given.
CREATE FUNCTION audit_append_many(p_rows jsonb) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    v_prev text;
    v_hash text;
    v_seq bigint;
    v_at timestamptz;
    v_seqs bigint[] := '{}';
BEGIN
    IF jsonb_typeof(p_rows) IS DISTINCT FROM 'array'
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_rows) e
                  WHERE jsonb_typeof(e.value) <> 'object'
                     OR jsonb_typeof(coalesce(e.value->'categories', '[]')) <> 'array') THEN
        RAISE EXCEPTION 'audit: a batch is an array of rows, each with a list of categories'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- audit_append()'s checks, for every row before any is written.
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_rows) e
               WHERE e.value->>'request_id' IS NULL OR e.value->>'request_id' = ''
                  OR length(e.value->>'request_id') > 200) THEN
        RAISE EXCEPTION 'audit: request id must be 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_rows) e
               WHERE e.value->>'action' IS NULL OR e.value->>'action' !~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)*$') THEN
        RAISE EXCEPTION 'audit: malformed action' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_rows) e
               WHERE e.value->'actor'->>'kind' IS NULL
                  OR e.value->'actor'->>'kind' NOT IN ('customer', 'partner', 'support', 'anonymous', 'staff', 'operator', 'service')) THEN
        RAISE EXCEPTION 'audit: unknown actor kind' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_rows) e,
                             jsonb_array_elements(coalesce(e.value->'categories', '[]')) c
               WHERE jsonb_typeof(c) <> 'string'
                  OR c #>> '{}' !~ '^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})?$') THEN
        RAISE EXCEPTION 'audit: categories must be names' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The same lock as audit_append(): batches and single appends, of every process, queue here.
    PERFORM pg_advisory_xact_lock(7238236170003768436);  -- 'dsaraudt' as a bigint
    SELECT l.seq, l.hash INTO v_seq, v_prev FROM public.audit_log l ORDER BY l.seq DESC LIMIT 1;
    v_seq := coalesce(v_seq, 0);
    v_prev := coalesce(v_prev, repeat('0', 64));
    FOR r IN
        SELECT x.request_id, x.actor, x.subject_id, x.action, coalesce(x.purpose, '{}') AS purpose,
               ARRAY(SELECT c.value FROM jsonb_array_elements_text(coalesce(x.categories, '[]'))
                                         WITH ORDINALITY AS c (value, n) ORDER BY c.n) AS categories,
               x.outcome
        FROM ROWS FROM (jsonb_to_recordset(p_rows) AS (
                 request_id text, actor jsonb, subject_id uuid, action text, purpose jsonb,
                 categories jsonb, outcome text))
             WITH ORDINALITY AS x (request_id, actor, subject_id, action, purpose, categories, outcome, n)
        ORDER BY x.n
    LOOP
        v_seq := v_seq + 1;
        v_at := clock_timestamp();
        v_hash := encode(sha256(convert_to(v_prev || public.audit_canonical(
            v_seq, v_at, r.request_id, r.actor, r.subject_id, r.action, r.purpose, r.categories,
            r.outcome), 'UTF8')), 'hex');
        PERFORM set_config('dsar.audit_append', v_seq::text, true);  -- names the row: 0010's trigger
        INSERT INTO public.audit_log
            (seq, at, request_id, actor, subject_id, action, purpose, categories, outcome, prev_hash, hash)
        VALUES (v_seq, v_at, r.request_id, r.actor, r.subject_id, r.action, r.purpose, r.categories,
                r.outcome, v_prev, v_hash);
        v_prev := v_hash;
        v_seqs := v_seqs || v_seq;
    END LOOP;
    RETURN v_seqs;
END
$$;

REVOKE ALL ON FUNCTION audit_append_many(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_append_many(jsonb) TO dsar_app;
