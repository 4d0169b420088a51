-- The billing system: the bank account a refund goes to.
CREATE TABLE payment (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_id      uuid NOT NULL,
    account_holder  text NOT NULL,
    bank_name       text NOT NULL,
    account_number  text NOT NULL,
    routing_number  text,
    purpose         text NOT NULL DEFAULT 'refund',
    created_at      timestamptz NOT NULL
);
CREATE INDEX payment_subject ON payment (subject_id, created_at, id);
