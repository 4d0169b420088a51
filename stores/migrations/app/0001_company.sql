-- The demo company's app database: shaped as the company's own product needs it, not as
-- dsar would like. Integer user ids, addresses in their own table, settings and identity
-- documents keyed by user id, the payment provider's customer id on the user.
CREATE TABLE users (
    id                    bigint PRIMARY KEY,
    email                 text NOT NULL,
    username              text NOT NULL UNIQUE,
    given_name            text NOT NULL,
    family_name           text NOT NULL,
    phone                 text,
    password_hash         text,
    security_question     text,
    security_answer_hash  text,
    billing_customer      text UNIQUE,
    signed_up_at          timestamptz NOT NULL,
    profile_updated_at    timestamptz NOT NULL
);
CREATE INDEX users_email ON users (lower(email));
CREATE INDEX users_email_exact ON users (email);

CREATE TABLE addresses (
    user_id       bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    street        text,
    city          text,
    region        text,
    postal_code   text,
    country_code  text
);

-- What the profile category reads: a view is how a company maps what one column cannot say.
CREATE VIEW customer_profiles AS
SELECT u.id AS user_id, u.given_name, u.family_name, u.email, u.phone,
       a.street, a.city, a.region, a.postal_code, a.country_code, u.profile_updated_at
FROM users u LEFT JOIN addresses a ON a.user_id = u.id;

CREATE TABLE user_settings (
    user_id             bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    functional_cookies  boolean NOT NULL,
    analytics_cookies   boolean NOT NULL,
    ad_cookies          boolean NOT NULL,
    newsletter          boolean NOT NULL,
    do_not_sell         boolean NOT NULL,
    locale              text,
    changed_at          timestamptz NOT NULL
);

CREATE TABLE identity_documents (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    doc_type      text NOT NULL CHECK (doc_type IN ('ssn', 'drivers_license', 'passport', 'state_id')),
    doc_number    text NOT NULL,
    collected_at  timestamptz NOT NULL
);
CREATE INDEX identity_documents_user ON identity_documents (user_id, collected_at, id);
