-- The demo company's analytics database: everything is keyed by the cookie id (anonymous_id)
-- the tracker set in the browser; `identifies` links cookie ids to the app's user ids when a
-- person signs in. One person may have many cookie ids.
CREATE TABLE identifies (
    anonymous_id   text NOT NULL,
    user_id        bigint NOT NULL,
    identified_at  timestamptz NOT NULL,
    PRIMARY KEY (anonymous_id, user_id)
);
CREATE INDEX identifies_user ON identifies (user_id);

CREATE TABLE devices (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    anonymous_id  text NOT NULL,
    ip            inet NOT NULL,
    user_agent    text NOT NULL,
    device_id     text,
    isp           text,
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL
);
CREATE INDEX devices_anonymous ON devices (anonymous_id, first_seen, id);

CREATE TABLE page_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    anonymous_id  text NOT NULL,
    ts            timestamptz NOT NULL,
    session_id    text NOT NULL,
    url           text NOT NULL,
    event_type    text NOT NULL,
    element       text,
    referrer      text,
    duration_ms   integer
);
CREATE INDEX page_events_anonymous ON page_events (anonymous_id, ts, id);

CREATE TABLE geo_lookups (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    anonymous_id  text NOT NULL,
    observed_at   timestamptz NOT NULL,
    ip            inet NOT NULL,
    city          text,
    region        text,
    postal_code   text,
    country       text NOT NULL,
    time_zone     text
);
CREATE INDEX geo_lookups_anonymous ON geo_lookups (anonymous_id, observed_at, id);
