-- A bound on the e-mails the public request form sends to one address (issue 17 follow-up):
-- anyone may type anyone's address on the form, so without one a stranger could have the
-- service mail a person as often as they like. Each e-mail the form sends is one row here, for
-- a day: the address only as its HMAC-SHA-256 under the service's secret key (DSAR_SECRET_KEY),
-- so a copy of the table names nobody, and cannot be checked against a list of addresses
-- without that key. Rows older than a day are deleted as new ones come in (domain/intake.py).
CREATE TABLE intake_mail (
    address_hash bytea NOT NULL CHECK (octet_length(address_hash) = 32),
    sent_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX intake_mail_address ON intake_mail (address_hash, sent_at);
CREATE INDEX intake_mail_sent ON intake_mail (sent_at);

GRANT SELECT, INSERT, DELETE ON intake_mail TO dsar_app;
