-- The analytics system: what is observed automatically when a person uses the services.
CREATE TABLE device (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_id   uuid NOT NULL,
    ip_address   inet NOT NULL,
    user_agent   text NOT NULL,
    cookie_id    text NOT NULL,
    device_id    text,
    isp          text,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL
);
CREATE INDEX device_subject ON device (subject_id, first_seen, id);

CREATE TABLE web_analytics (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_id   uuid NOT NULL,
    occurred_at  timestamptz NOT NULL,
    session_id   text NOT NULL,
    page_url     text NOT NULL,
    action       text NOT NULL,
    element      text,
    referrer     text,
    duration_ms  integer
);
CREATE INDEX web_analytics_subject ON web_analytics (subject_id, occurred_at, id);

CREATE TABLE geolocation (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_id   uuid NOT NULL,
    observed_at  timestamptz NOT NULL,
    ip_address   inet NOT NULL,
    city         text,
    region       text,
    postal_code  text,
    country      text NOT NULL,
    time_zone    text
);
CREATE INDEX geolocation_subject ON geolocation (subject_id, observed_at, id);
