-- A batch's canonical texts computed before the chain's lock, in one query (issue 19, item 6).
--
-- Measured on 64-row batches of support looks (one connection, batches back to back): 0019's
-- audit_append_many() took 8 ms a batch, half of it in audit_canonical() and most of that in
-- audit_map()'s PL/pgSQL, called twice a row, all of it under the lock that orders every
-- writer of the chain. Only two fields of a row's canonical text depend on the chain, its seq
-- and its time; what follows them, the row's tail, is now computed for the whole batch by one
-- set-based query before the lock is taken, and under the lock a row costs one hash. 4 to 5 ms
-- a batch; 64 writers through domain/_groupcommit.py: 8,200 to 9,100 appends a second, against
-- 5,800 to 7,200 with 0019 (same machine, same hour).
--
-- Nothing a row holds or how it is hashed changes; the checks audit_map() made while hashing
-- are made by the batch's check pass, with the same errors. audit_append() and its
-- audit_canonical() are untouched.

-- The tails of a batch's rows, numbered as audit_batch_rows() numbers them: what follows a
-- row's time in its canonical text, laid out as audit_canonical() lays it out (0002) but for the
-- whole batch in one query: a map's text by a subquery of its own instead of audit_map()'s
-- PL/pgSQL, which costs twice as much a call. Only for rows already checked (maps are objects
-- of strings). tests/test_audit_group_commit.py holds the two layouts to each other and to
-- Python's `canonical()` with keys, values and categories chosen to catch a difference.
CREATE FUNCTION audit_batch_tails(p_rows jsonb) RETURNS TABLE (n bigint, tail text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT b.n,
           public.audit_field(b.request_id)
        || (SELECT 'M' || count(*)::text || ':'
                || coalesce(string_agg(public.audit_field(m.key) || public.audit_field(m.value #>> '{}'),
                                       '' ORDER BY m.key COLLATE "C"), '')
            FROM pg_catalog.jsonb_each(b.actor) m)
        || public.audit_field(b.subject_id::text)
        || public.audit_field(b.action)
        || (SELECT 'M' || count(*)::text || ':'
                || coalesce(string_agg(public.audit_field(m.key) || public.audit_field(m.value #>> '{}'),
                                       '' ORDER BY m.key COLLATE "C"), '')
            FROM pg_catalog.jsonb_each(b.purpose) m)
        || 'L' || cardinality(b.categories)::text || ':'
        || coalesce((SELECT string_agg(public.audit_field(c), '' ORDER BY k)
                     FROM pg_catalog.unnest(b.categories) WITH ORDINALITY AS u (c, k)), '')
        || public.audit_field(b.outcome)
    FROM public.audit_batch_rows(p_rows) b
$$;
REVOKE ALL ON FUNCTION audit_batch_tails(jsonb) FROM PUBLIC;

-- The batch: checked in one pass (audit_append()'s checks and audit_map()'s), its tails
-- computed by one query, then under the lock each row hashed onto the one before and all
-- inserted by one statement in seq order (0019's trigger lets exactly that run in). Its rows
-- share one `at`: the batch commits as one.
CREATE OR REPLACE FUNCTION audit_append_many(p_rows jsonb) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_problem text;
    v_tails text[];
    v_prev text;
    v_first bigint;
    v_at timestamptz;
    v_stamp text;
    v_prevs text[];
    v_hashes text[];
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
             WHEN jsonb_typeof(e.value->'actor') <> 'object'
                  OR jsonb_typeof(coalesce(nullif(e.value->'purpose', 'null'), '{}')) <> 'object'
               THEN 'audit: a map must be a JSON object'
             WHEN EXISTS (SELECT 1 FROM jsonb_each(e.value->'actor') m WHERE jsonb_typeof(m.value) <> 'string')
                  OR EXISTS (SELECT 1 FROM jsonb_each(coalesce(nullif(e.value->'purpose', 'null'), '{}')) m
                             WHERE jsonb_typeof(m.value) <> 'string')
               THEN 'audit: map values must be strings'
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
        OR jsonb_typeof(e.value->'actor') <> 'object'
        OR jsonb_typeof(coalesce(nullif(e.value->'purpose', 'null'), '{}')) <> 'object'
        OR EXISTS (SELECT 1 FROM jsonb_each(e.value->'actor') m WHERE jsonb_typeof(m.value) <> 'string')
        OR EXISTS (SELECT 1 FROM jsonb_each(coalesce(nullif(e.value->'purpose', 'null'), '{}')) m
                   WHERE jsonb_typeof(m.value) <> 'string')
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(e.value->'categories') c
                   WHERE jsonb_typeof(c) <> 'string'
                      OR c #>> '{}' !~ '^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})?$')
     LIMIT 1;
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION '%', v_problem USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(t.tail ORDER BY t.n) INTO v_tails FROM public.audit_batch_tails(p_rows) t;
    v_tails := coalesce(v_tails, '{}');

    PERFORM pg_advisory_xact_lock(7238236170003768436);  -- the chain's lock, as audit_append()
    SELECT l.seq, l.hash INTO v_first, v_prev FROM public.audit_log l ORDER BY l.seq DESC LIMIT 1;
    v_first := coalesce(v_first, 0) + 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    v_at := clock_timestamp();
    v_stamp := public.audit_field(to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'));
    v_prevs := array_fill(NULL::text, ARRAY[cardinality(v_tails)]);
    v_hashes := v_prevs;
    FOR i IN 1 .. cardinality(v_tails) LOOP
        v_prevs[i] := v_prev;
        v_prev := encode(sha256(convert_to(
            v_prev || 'v1;' || public.audit_field((v_first + i - 1)::text) || v_stamp || v_tails[i],
            'UTF8')), 'hex');
        v_hashes[i] := v_prev;
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

