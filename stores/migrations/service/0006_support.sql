-- Support agents (issue 7): the hourly limit on different people one agent looks at is counted
-- from the audit log itself (api/support.py), by agent and time; this keeps that count an index
-- range scan however long the log grows. Reading needs only the SELECT dsar_app already has.
CREATE INDEX audit_log_support_agent ON audit_log ((actor->>'iss'), (actor->>'sub'), at)
    WHERE actor->>'kind' = 'support';
