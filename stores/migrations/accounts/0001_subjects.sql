-- The accounts system: who a person is, how they log in, what they told us.
CREATE TABLE subjects (
    id          uuid PRIMARY KEY,
    handle      text UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A login at an identity provider, linked to one subject. Identity is (issuer, sub).
CREATE TABLE identity_links (
    issuer      text NOT NULL,
    sub         text NOT NULL,
    subject_id  uuid NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
    linked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, sub)
);
CREATE INDEX identity_links_subject ON identity_links (subject_id, issuer);

CREATE TABLE profile (
    subject_id   uuid PRIMARY KEY REFERENCES subjects (id) ON DELETE CASCADE,
    first_name   text NOT NULL,
    last_name    text NOT NULL,
    email        text NOT NULL,
    phone        text,
    street       text,
    city         text,
    region       text,
    postal_code  text,
    country      text,
    updated_at   timestamptz NOT NULL
);
-- Support agents look people up by exact, normalised e-mail address.
CREATE INDEX profile_email ON profile (lower(email), subject_id);

CREATE TABLE identifiers (
    subject_id            uuid PRIMARY KEY REFERENCES subjects (id) ON DELETE CASCADE,
    username              text NOT NULL,
    password_hash         text,
    security_question     text,
    security_answer_hash  text,
    created_at            timestamptz NOT NULL
);

CREATE TABLE professional (
    subject_id    uuid PRIMARY KEY REFERENCES subjects (id) ON DELETE CASCADE,
    company_name  text NOT NULL,
    job_title     text,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE preferences (
    subject_id              uuid PRIMARY KEY REFERENCES subjects (id) ON DELETE CASCADE,
    functional_cookies      boolean NOT NULL,
    analytics_cookies       boolean NOT NULL,
    advertising_cookies     boolean NOT NULL,
    marketing_emails        boolean NOT NULL,
    do_not_sell_or_share    boolean NOT NULL,
    language                text,
    updated_at              timestamptz NOT NULL
);

CREATE TABLE provided (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_id    uuid NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
    channel       text NOT NULL,
    title         text NOT NULL,
    body          text NOT NULL,
    submitted_at  timestamptz NOT NULL
);
CREATE INDEX provided_subject ON provided (subject_id, submitted_at, id);

CREATE TABLE sensitive (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_id    uuid NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('ssn', 'drivers_license', 'passport', 'state_id')),
    value         text NOT NULL,
    collected_at  timestamptz NOT NULL
);
CREATE INDEX sensitive_subject ON sensitive (subject_id, collected_at, id);
