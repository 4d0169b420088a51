-- Row-level security (issue 18, item 2): a query of the service's role that forgets its
-- `WHERE subject_id = …` returns nothing rather than everyone's rows.
--
-- The service connects as a login role that is a member of dsar_app (0002_audit.sql): not an
-- owner, not a superuser, no BYPASSRLS. Each transaction of the service says whose rows it may
-- touch, with settings that end with the transaction (stores/scope.py):
--     SELECT set_config('dsar.subject', '<subject id>', true),
--            set_config('dsar.scope',   '<reason>',     true);
-- A row is visible, and may be written, when its subject column equals `dsar.subject`, or when
-- `dsar.scope` is one of the reasons the table was opened to. A reason names one of the few
-- paths that legitimately reach across people (docs/SECURITY.md lists them):
--     login    the subject linked to a login (identity_links, by issuer and sub)
--     subjects subject ids for anchor values and handles (support's search, the CLI, the seed)
--     by_id    one export or grant read by its id, to decide whether the caller may have it
--              and to record a refused attempt against its person
--     partner  a partner's live grants and the transfers made under them
--     support  an agent's own looks in the audit log (the hourly limit, the ticket's person)
--     sweep    jobs over everyone: exports orphaned by a stop, expired account sessions
--     audit    the whole audit log: verify and checkpoints
--     staff    privacy staff's queue of requests: each request's timeline and exports
-- The owner (who runs the migrations) is not bound: RLS is not forced, so migrations and the
-- SECURITY DEFINER functions keep working. A superuser or a BYPASSRLS role is never bound:
-- never run the service as one (`dsar serve` refuses to).
--
-- A later migration protects a new per-person table with one call, and grants it:
--     SELECT dsar_protect_subject_rows('requests', ARRAY['sweep']);
--     GRANT SELECT, INSERT, UPDATE ON requests TO dsar_app;

-- The subject of the current transaction, or NULL when none was set ('' after a reset).
CREATE FUNCTION dsar_current_subject() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('dsar.subject', true), '')::uuid $$;

-- The named reason of the current transaction, or NULL.
CREATE FUNCTION dsar_current_scope() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('dsar.scope', true), '') $$;

-- Turns row-level security on for `p_table` with one policy, `subject_rows`, for every command
-- and every role but the owner: a row whose `p_column` equals the transaction's subject, or any
-- row when the transaction's reason is one of `p_scopes`. Calling it again replaces the policy
-- (to open a table to another reason). Returns the policy's condition, for the record.
CREATE FUNCTION dsar_protect_subject_rows(
    p_table regclass, p_scopes text[] DEFAULT '{}', p_column name DEFAULT 'subject_id'
) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_condition text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = p_table AND attname = p_column AND NOT attisdropped) THEN
        RAISE EXCEPTION 'dsar_protect_subject_rows: % has no column %', p_table, p_column
            USING ERRCODE = 'undefined_column';
    END IF;
    -- A scope is a name (stores/scope.py lists them, docs/SECURITY.md says why each exists).
    IF EXISTS (SELECT 1 FROM unnest(p_scopes) s WHERE s IS NULL OR s !~ '^[a-z][a-z_]{0,30}$') THEN
        RAISE EXCEPTION 'dsar_protect_subject_rows: a scope is a short lowercase name'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The subject is compared as a stable value, so an index on the column is used.
    v_condition := format('%I = public.dsar_current_subject()', p_column);
    IF cardinality(p_scopes) > 0 THEN
        v_condition := v_condition
            || format(' OR public.dsar_current_scope() = ANY (%L::text[])', p_scopes);
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', p_table);
    EXECUTE format('DROP POLICY IF EXISTS subject_rows ON %s', p_table);
    EXECUTE format('CREATE POLICY subject_rows ON %s USING (%s) WITH CHECK (%s)',
                   p_table, v_condition, v_condition);
    RETURN v_condition;
END
$$;
REVOKE ALL ON FUNCTION dsar_protect_subject_rows(regclass, text[], name) FROM PUBLIC;

SELECT dsar_protect_subject_rows('exports', ARRAY['by_id', 'partner', 'sweep', 'staff']);
SELECT dsar_protect_subject_rows('grants', ARRAY['by_id', 'partner']);
SELECT dsar_protect_subject_rows('subjects', ARRAY['subjects'], 'id');
SELECT dsar_protect_subject_rows('identity_links', ARRAY['login']);
-- Rows are appended by audit_append() (SECURITY DEFINER: the owner, not bound); reading the log
-- is the subject's own rows (their access log), an agent's own looks, or all of it to verify.
SELECT dsar_protect_subject_rows('audit_log', ARRAY['support', 'audit', 'staff']);

-- The account page's sessions are not a person's until sign-in, and are found by the hash of
-- the cookie's id: visible to the transaction that names that hash (`dsar.session`, hex), and to
-- the sweep that deletes expired ones.
ALTER TABLE account_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY session_rows ON account_sessions
    USING (id_hash = decode(current_setting('dsar.session', true), 'hex')
           OR public.dsar_current_scope() = 'sweep')
    WITH CHECK (id_hash = decode(current_setting('dsar.session', true), 'hex'));

-- What the service's role may do with the tables 0002..0008 did not grant it.
GRANT SELECT, INSERT, UPDATE ON subjects TO dsar_app;
GRANT SELECT, INSERT, UPDATE ON identity_links TO dsar_app;
GRANT EXECUTE ON FUNCTION dsar_current_subject(), dsar_current_scope() TO dsar_app;
-- The service's role reads which migrations are applied (and so finds nothing to do).
GRANT SELECT ON schema_migrations TO dsar_app;
