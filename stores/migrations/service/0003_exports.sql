-- Export requests: who may download, the running lease, and one running export per subject.
--
-- A bundle is not stored: it is streamed from the stores when its owner downloads it, so no
-- copy of anyone's data sits at rest here. While it streams the row is `running` and its
-- `heartbeat_at` moves; a row whose heartbeat stopped (the process died) is failed by the next
-- request for that subject.
ALTER TABLE exports
    ADD COLUMN recipient    jsonb NOT NULL DEFAULT '{"kind": "subject"}'::jsonb,
    ADD COLUMN started_at   timestamptz,
    ADD COLUMN heartbeat_at timestamptz,
    ADD COLUMN downloads    integer NOT NULL DEFAULT 0;

-- The database, not the code, guarantees at most one running export per subject.
CREATE UNIQUE INDEX exports_one_running ON exports (subject_id) WHERE status = 'running';
