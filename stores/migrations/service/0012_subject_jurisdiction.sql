-- Whose law applies to a person (catalogue [jurisdictions]: GDPR, CCPA, UNKNOWN). Rules that
-- differ by law read it: what an access copy withholds, which statements the person gets, and
-- the deadlines of their requests. `jurisdiction_source` says where it came from: `stores`
-- (where the company's systems say the person lives, catalogue [residence]), `declared` (the
-- person said so when asking), `conflict` (the two disagreed: UNKNOWN, the stricter rule) or
-- `unknown` (nothing says). `declared_jurisdiction` keeps the person's own declaration, so a
-- later look at the stores is weighed against it.
ALTER TABLE subjects
    ADD COLUMN jurisdiction text NOT NULL DEFAULT 'UNKNOWN'
        CHECK (jurisdiction ~ '^[A-Z][A-Z0-9_]{0,31}$'),
    ADD COLUMN jurisdiction_source text NOT NULL DEFAULT 'unknown'
        CHECK (jurisdiction_source IN ('unknown', 'stores', 'declared', 'conflict')),
    ADD COLUMN declared_jurisdiction text
        CHECK (declared_jurisdiction ~ '^[A-Z][A-Z0-9_]{0,31}$'),
    ADD COLUMN jurisdiction_at timestamptz;
