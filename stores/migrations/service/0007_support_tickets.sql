-- Support tickets (issue 7): a ticket covers the person it was first used for; api/support.py
-- reads that from the audit log by ticket, which this index keeps a short range scan.
CREATE INDEX audit_log_support_ticket ON audit_log ((purpose->>'ticket'))
    WHERE actor->>'kind' = 'support';
