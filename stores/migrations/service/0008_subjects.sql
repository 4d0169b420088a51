-- A subject is one value of the anchor key of the stores file (say, the company's user id).
-- dsar's own id for it keys every table of this database; the anchor value is how the
-- company's systems know the person. Logins at an identity provider are linked here.
CREATE TABLE subjects (
    id          uuid PRIMARY KEY,
    anchor      text NOT NULL UNIQUE,
    handle      text UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identity_links (
    issuer      text NOT NULL,
    sub         text NOT NULL,
    subject_id  uuid NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
    linked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, sub)
);
CREATE INDEX identity_links_subject ON identity_links (subject_id, issuer);
