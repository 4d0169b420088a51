-- The demo company's CRM: keyed by e-mail address, as CRMs are. On MySQL when one is
-- configured (stores/demo_mysql.py creates the same tables there).
CREATE TABLE contacts (
    id          bigint PRIMARY KEY,
    email       varchar(320) NOT NULL,
    company     text,
    job_title   text,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX contacts_email ON contacts (email);

CREATE TABLE messages (
    id             bigint PRIMARY KEY,
    contact_email  varchar(320) NOT NULL,
    channel        text NOT NULL,
    subject        text NOT NULL,
    body           text NOT NULL,
    received_at    timestamptz NOT NULL
);
CREATE INDEX messages_contact ON messages (contact_email, received_at, id);
