-- A group-committed batch inserted with one statement (issue 19, item 6, continued).
--
-- Measured with PostgreSQL's own function timings (track_functions), 64-row batches: 0018's
-- audit_append_many() spent about 380 us a row, two thirds of it running one INSERT statement
-- per row and audit_map()'s three queries per map; this version about 215 us. Nothing a row
-- holds or how it is hashed changes, and 0018's tests hold: the chain verifies, checkpoints
-- cover batched rows, a direct INSERT is refused.
--
-- 1. The insert trigger of 0010 lets in the row named in `dsar.audit_append` and then names
--    none. It now also lets a batch name a run of rows: when `dsar.audit_append_last` names a
--    later seq, the row after this one is named next, so one INSERT of rows first..last, in
--    seq order, goes in, and nothing else. audit_append_many() sets both and clears both after
--    its INSERT. No caller gains anything: the service's role has no INSERT on the log, and
--    whoever could forge `dsar.audit_append_last` could forge `dsar.audit_append` already.
CREATE OR REPLACE FUNCTION audit_log_insert_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_last text := current_setting('dsar.audit_append_last', true);
BEGIN
    IF current_setting('dsar.audit_append', true) IS DISTINCT FROM NEW.seq::text THEN
        RAISE EXCEPTION 'audit_log rows are written by audit_append() only: INSERT refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_last ~ '^[0-9]{1,18}$' AND NEW.seq < v_last::bigint THEN
        PERFORM set_config('dsar.audit_append', (NEW.seq + 1)::text, true);  -- the batch's next row
    ELSE
        PERFORM set_config('dsar.audit_append', '', true);  -- one row per call
    END IF;
    RETURN NEW;
END
$$;

-- 2. One query per map instead of three; the same text (tests/test_audit.py holds it to the
--    Python `canonical()` with keys and values chosen to catch a difference).
CREATE OR REPLACE FUNCTION audit_map(p_map jsonb) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count bigint;
    v_strings boolean;
    v_body text;
BEGIN
    IF jsonb_typeof(p_map) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'audit: a map must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT count(*), bool_and(jsonb_typeof(e.value) = 'string'),
           string_agg(public.audit_field(e.key) || public.audit_field(e.value #>> '{}'), ''
                      ORDER BY e.key COLLATE "C")
      INTO v_count, v_strings, v_body
      FROM jsonb_each(p_map) e;
    IF NOT coalesce(v_strings, true) THEN
        RAISE EXCEPTION 'audit: map values must be strings' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN 'M' || v_count::text || ':' || coalesce(v_body, '');
END
$$;

-- The rows of a batch as audit_append() takes its arguments, numbered from 1 in the order
-- given: what is hashed and what is inserted are read the same way.
CREATE FUNCTION audit_batch_rows(p_rows jsonb) RETURNS TABLE (
    n bigint, request_id text, actor jsonb, subject_id uuid, action text, purpose jsonb,
    categories text[], outcome text
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT x.n, x.request_id, x.actor, x.subject_id, x.action, coalesce(x.purpose, '{}'::jsonb),
           ARRAY(SELECT c.value FROM jsonb_array_elements_text(coalesce(x.categories, '[]'::jsonb))
                                     WITH ORDINALITY AS c (value, k) ORDER BY c.k),
           x.outcome
    FROM ROWS FROM (pg_catalog.jsonb_to_recordset(p_rows) AS (
             request_id text, actor jsonb, subject_id uuid, action text, purpose jsonb,
             categories jsonb, outcome text))
         WITH ORDINALITY AS x (request_id, actor, subject_id, action, purpose, categories, outcome, n)
$$;
REVOKE ALL ON FUNCTION audit_batch_rows(jsonb) FROM PUBLIC;

-- 3. The batch: checked in one pass, hashed row by row onto the tail, inserted by one
--    statement in seq order. Its rows share one `at`: the batch commits as one.
CREATE OR REPLACE FUNCTION audit_append_many(p_rows jsonb) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    v_problem text;
    v_prev text;
    v_first bigint;
    v_at timestamptz;
    v_prevs text[] := '{}';
    v_hashes text[] := '{}';
BEGIN
    IF jsonb_typeof(p_rows) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'audit: a batch is an array of rows' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- audit_append()'s checks (tests/test_audit_group_commit.py feeds both the same bad rows).
    SELECT CASE
             WHEN jsonb_typeof(e.value) <> 'object'
                  OR jsonb_typeof(coalesce(e.value->'categories', '[]')) <> 'array'
               THEN 'audit: a row is an object with a list of categories'
             WHEN coalesce(length(e.value->>'request_id'), 0) NOT BETWEEN 1 AND 200
               THEN 'audit: request id must be 1 to 200 characters'
             WHEN coalesce(e.value->>'action' !~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)*$', true)
               THEN 'audit: malformed action'
             WHEN coalesce(e.value->'actor'->>'kind' NOT IN
                           ('customer', 'partner', 'support', 'anonymous', 'staff', 'operator', 'service'), true)
               THEN 'audit: unknown actor kind'
             ELSE 'audit: categories must be names'
           END
      INTO v_problem
      FROM jsonb_array_elements(p_rows) e
     WHERE jsonb_typeof(e.value) <> 'object'
        OR jsonb_typeof(coalesce(e.value->'categories', '[]')) <> 'array'
        OR coalesce(length(e.value->>'request_id'), 0) NOT BETWEEN 1 AND 200
        OR coalesce(e.value->>'action' !~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)*$', true)
        OR coalesce(e.value->'actor'->>'kind' NOT IN
                    ('customer', 'partner', 'support', 'anonymous', 'staff', 'operator', 'service'), true)
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(e.value->'categories') c
                   WHERE jsonb_typeof(c) <> 'string'
                      OR c #>> '{}' !~ '^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})?$')
     LIMIT 1;
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION '%', v_problem USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(7238236170003768436);  -- the chain's lock, as audit_append()
    SELECT l.seq, l.hash INTO v_first, v_prev FROM public.audit_log l ORDER BY l.seq DESC LIMIT 1;
    v_first := coalesce(v_first, 0) + 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    v_at := clock_timestamp();
    FOR r IN
        SELECT public.audit_canonical(
                   v_first + b.n - 1, v_at, b.request_id, b.actor, b.subject_id, b.action,
                   b.purpose, b.categories, b.outcome) AS text
        FROM public.audit_batch_rows(p_rows) b
        ORDER BY b.n
    LOOP
        v_prevs := v_prevs || v_prev;
        v_prev := encode(sha256(convert_to(v_prev || r.text, 'UTF8')), 'hex');
        v_hashes := v_hashes || v_prev;
    END LOOP;

    PERFORM set_config('dsar.audit_append', v_first::text, true),
            set_config('dsar.audit_append_last', (v_first + cardinality(v_hashes) - 1)::text, true);
    INSERT INTO public.audit_log
        (seq, at, request_id, actor, subject_id, action, purpose, categories, outcome, prev_hash, hash)
    SELECT v_first + b.n - 1, v_at, b.request_id, b.actor, b.subject_id, b.action, b.purpose,
           b.categories, b.outcome, v_prevs[b.n], v_hashes[b.n]
    FROM public.audit_batch_rows(p_rows) b
    ORDER BY b.n;
    PERFORM set_config('dsar.audit_append', '', true), set_config('dsar.audit_append_last', '', true);
    RETURN ARRAY(SELECT s FROM generate_series(v_first, v_first + cardinality(v_hashes) - 1) s);
END
$$;
