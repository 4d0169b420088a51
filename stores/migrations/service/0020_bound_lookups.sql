-- The two service-database reads of almost every request, each in one round trip (issue 19):
-- the subject linked to a login (by issuer and sub, under scope `login`), and a subject's anchor
-- value (bound to that subject). Bound as stores/scope.py binds a transaction, they took four
-- (BEGIN, set_config, SELECT, COMMIT); here the binding is set inside the statement, before the
-- read, and put back as it was before the function returns, so a call inside a transaction
-- that is bound to something else leaves that binding as it found it.
--
-- SECURITY INVOKER: the caller's own role reads, under the same row-level security as any read
-- of it (0009_row_security.sql). Nothing here reaches a row the same binding by set_config would
-- not: the function only saves the caller the round trips.
CREATE FUNCTION dsar_subject_for_login(p_issuer text, p_sub text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_subject text := coalesce(current_setting('dsar.subject', true), '');
    v_scope   text := coalesce(current_setting('dsar.scope', true), '');
    v_session text := coalesce(current_setting('dsar.session', true), '');
    v_found   uuid;
BEGIN
    PERFORM set_config('dsar.subject', '', true), set_config('dsar.scope', 'login', true),
            set_config('dsar.session', '', true);
    SELECT subject_id INTO v_found FROM identity_links WHERE issuer = p_issuer AND sub = p_sub;
    PERFORM set_config('dsar.subject', v_subject, true), set_config('dsar.scope', v_scope, true),
            set_config('dsar.session', v_session, true);
    RETURN v_found;
END
$$;

CREATE FUNCTION dsar_anchor_of(p_subject uuid) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_subject text := coalesce(current_setting('dsar.subject', true), '');
    v_scope   text := coalesce(current_setting('dsar.scope', true), '');
    v_session text := coalesce(current_setting('dsar.session', true), '');
    v_found   text;
BEGIN
    PERFORM set_config('dsar.subject', p_subject::text, true), set_config('dsar.scope', '', true),
            set_config('dsar.session', '', true);
    SELECT anchor INTO v_found FROM subjects WHERE id = p_subject;
    PERFORM set_config('dsar.subject', v_subject, true), set_config('dsar.scope', v_scope, true),
            set_config('dsar.session', v_session, true);
    RETURN v_found;
END
$$;

REVOKE ALL ON FUNCTION dsar_subject_for_login(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION dsar_anchor_of(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dsar_subject_for_login(text, text) TO dsar_app;
GRANT EXECUTE ON FUNCTION dsar_anchor_of(uuid) TO dsar_app;
