-- Webhook events, recorded once (HubSpot's eventId alone is not unique: the key is eventId,
-- subscription type, object and time), processed asynchronously, deleted by the cleanup job
-- after expires_at. Times: Unix ms.
CREATE TABLE IF NOT EXISTS webhook_events (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id          BIGINT  NOT NULL,
    subscription_type TEXT    NOT NULL,
    object_id         BIGINT  NOT NULL,
    occurred_at       BIGINT  NOT NULL,
    payload           TEXT    NOT NULL,
    received_at       BIGINT  NOT NULL,
    processed_at      BIGINT,
    expires_at        BIGINT  NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS webhook_events_key
    ON webhook_events (event_id, subscription_type, object_id, occurred_at);
CREATE INDEX IF NOT EXISTS webhook_events_pending ON webhook_events (processed_at, received_at);

-- Contacts as last read from HubSpot, by id, email and E.164 phone.
CREATE TABLE IF NOT EXISTS contact_cache (
    hubspot_id    TEXT    PRIMARY KEY,
    email         TEXT,
    phone         TEXT,
    contact       TEXT    NOT NULL,
    hs_updated_at TEXT,
    fetched_at    BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS contact_cache_phone ON contact_cache (phone);
CREATE INDEX IF NOT EXISTS contact_cache_email ON contact_cache (email);
