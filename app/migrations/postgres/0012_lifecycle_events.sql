-- PostgreSQL: the same schema as ../sqlite/.
-- Lifecycle events (issue 14), per portal (portal_key: the hub id, 0 for the private-app
-- account). An event is stored once per (portal, event_id); subject names who it is about:
-- 'u:<external id>' or 'e:<email>' (see lifecycle_subjects). body: {subject, data} as
-- validated. timeline: 0 not for the timeline, 1 due there, 2 sent there. merchant_id: the
-- merchant a merchant_exclusive_enabled event is about (its company's history).
CREATE TABLE IF NOT EXISTS lifecycle_events (
    seq         BIGSERIAL PRIMARY KEY,
    portal_key  BIGINT NOT NULL,
    event_id    TEXT   NOT NULL,
    event_type  TEXT   NOT NULL,
    occurred_at BIGINT NOT NULL,
    subject     TEXT   NOT NULL,
    body        TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    timeline    BIGINT NOT NULL DEFAULT 0,
    merchant_id TEXT,
    UNIQUE (portal_key, event_id)
);
CREATE INDEX IF NOT EXISTS lifecycle_events_merchant ON lifecycle_events (portal_key, merchant_id);
CREATE INDEX IF NOT EXISTS lifecycle_events_subject ON lifecycle_events (portal_key, subject);
CREATE INDEX IF NOT EXISTS lifecycle_events_timeline ON lifecycle_events (timeline, portal_key);

-- One row per subject (a user: 'u:'/'e:', or a merchant's company: 'm:<merchant id>'): its
-- identity and the delivery of its derived properties. The outbox
-- worker sends a subject when last_seq > sent_seq (state 'pending'), deriving the properties
-- from every stored event at send time; sent_seq is the newest event that delivery read.
-- id_property: what keys its HubSpot contact ('email', or the external id property), fixed when
-- the subject is first stored. sent_once: the set-once properties already delivered.
-- state: pending | sent | dead | previewed (HUBSPOT_SEND_LIVE=false: checked, not sent).
CREATE TABLE IF NOT EXISTS lifecycle_subjects (
    portal_key      BIGINT NOT NULL,
    subject         TEXT   NOT NULL,
    external_id     TEXT,
    email           TEXT,
    id_property     TEXT   NOT NULL,
    last_seq        BIGINT NOT NULL,
    sent_seq        BIGINT NOT NULL DEFAULT 0,
    state           TEXT   NOT NULL DEFAULT 'pending',
    sent_once       TEXT   NOT NULL DEFAULT '[]',
    last_payload    TEXT,
    problems        TEXT,
    hubspot_id      TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    PRIMARY KEY (portal_key, subject)
);
CREATE INDEX IF NOT EXISTS lifecycle_subjects_due ON lifecycle_subjects (state, portal_key, next_attempt_at);
CREATE INDEX IF NOT EXISTS lifecycle_subjects_email ON lifecycle_subjects (portal_key, email);
CREATE INDEX IF NOT EXISTS lifecycle_subjects_external ON lifecycle_subjects (portal_key, external_id);
