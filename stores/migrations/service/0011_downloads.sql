-- A download link serves a retry after a download the client may not have finished.
--
-- No server can know whether a client received the last bytes it sent (they may sit in a
-- socket buffer when the client hangs up), so a whole bundle sent is not taken for one
-- received: the link serves up to `downloads_allowed` whole bundles within its lifetime, each
-- audited, and any number of cut-off ones. `sent_bytes` says what the last download sent.
ALTER TABLE exports
    ADD COLUMN full_sends        integer NOT NULL DEFAULT 0,
    ADD COLUMN downloads_allowed integer NOT NULL DEFAULT 3 CHECK (downloads_allowed > 0),
    ADD COLUMN sent_bytes        bigint;

-- Links already spent by one whole download stay spent.
UPDATE exports SET full_sends = 1, sent_bytes = bytes WHERE status = 'completed';
