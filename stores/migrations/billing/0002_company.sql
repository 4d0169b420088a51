-- The demo company's billing database: keyed by the payment provider's customer id.
CREATE TABLE bank_accounts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer        text NOT NULL,
    holder_name     text NOT NULL,
    bank_name       text NOT NULL,
    account_number  text NOT NULL,
    routing_number  text,
    purpose         text NOT NULL DEFAULT 'refund',
    created         timestamptz NOT NULL
);
CREATE INDEX bank_accounts_customer ON bank_accounts (customer, created, id);
