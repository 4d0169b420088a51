-- Row-level security on the requests (issue 17 beside issue 18, item 2): the service's role sees
-- a request when it is the transaction's person's, or when the transaction names a reason that
-- reaches across people (stores/scope.py):
--     staff   privacy staff's queue
--     sweep   counting and listing the overdue (the gauge, `dsar requests list`, the report)
--     intake  a request made without an account, before it is anyone's: taken, and confirmed
--             through its link (found by the link's hash)
SELECT dsar_protect_subject_rows('requests', ARRAY['staff', 'sweep', 'intake']);
SELECT dsar_protect_subject_rows('request_links', ARRAY['intake']);
