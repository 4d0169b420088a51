-- Word of every change to which subject a login names, or to a subject's anchor value (issue
-- 19). A server keeps the answer of `dsar_subject_for_login` and `dsar_anchor_of` in memory
-- while a connection of its own LISTENs on `dsar_logins` (stores/subjects.py, LoginWatch), and
-- forgets all of it at each notice. The notice is sent with the commit of the change, to every
-- process listening, and says nothing of whom it was about: its payload is empty.
--
-- FOR EACH STATEMENT: one notice per statement however many rows it touched (PostgreSQL also
-- folds identical notices of one transaction into one). A subject deleted takes its logins with
-- it (ON DELETE CASCADE), and both tables say so.
CREATE FUNCTION dsar_logins_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('dsar_logins', '');
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION dsar_logins_changed() FROM PUBLIC;

CREATE TRIGGER identity_links_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON identity_links
    FOR EACH STATEMENT EXECUTE FUNCTION dsar_logins_changed();

CREATE TRIGGER subjects_anchor_changed
    AFTER UPDATE OF anchor, id OR DELETE OR TRUNCATE ON subjects
    FOR EACH STATEMENT EXECUTE FUNCTION dsar_logins_changed();
