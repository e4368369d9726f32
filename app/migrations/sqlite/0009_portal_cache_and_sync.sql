-- The contact cache and the pull sync's state, per portal. portal_key is the portal's hub id,
-- or 0 for the single account of HUBSPOT_ACCESS_TOKEN (as a NULL portal elsewhere: a key
-- column cannot be NULL). The single-account tables contact_cache and sync_state are copied
-- here and kept for the release before this one, which may still run beside this one during a
-- blue-green switch; a later release drops them.
CREATE TABLE IF NOT EXISTS portal_contacts (
    portal_key    BIGINT  NOT NULL,
    hubspot_id    TEXT    NOT NULL,
    email         TEXT,
    phone         TEXT,
    contact       TEXT    NOT NULL,
    hs_updated_at TEXT,
    fetched_at    BIGINT  NOT NULL,
    PRIMARY KEY (portal_key, hubspot_id)
);
CREATE INDEX IF NOT EXISTS portal_contacts_phone ON portal_contacts (portal_key, phone);
CREATE INDEX IF NOT EXISTS portal_contacts_email ON portal_contacts (portal_key, email);
INSERT INTO portal_contacts (portal_key, hubspot_id, email, phone, contact, hs_updated_at, fetched_at)
    SELECT 0, hubspot_id, email, phone, contact, hs_updated_at, fetched_at FROM contact_cache WHERE true
    ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS portal_sync_state (
    portal_key      BIGINT  NOT NULL,
    object_type     TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    cursor_ms       BIGINT,
    position        TEXT,
    run_until       BIGINT,
    error_count     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_success    BIGINT,
    started_at      BIGINT,
    synced_last_run BIGINT  NOT NULL DEFAULT 0,
    updated_at      BIGINT  NOT NULL,
    PRIMARY KEY (portal_key, object_type)
);
INSERT INTO portal_sync_state (portal_key, object_type, status, cursor_ms, position, run_until,
        error_count, last_error, last_success, started_at, synced_last_run, updated_at)
    SELECT 0, object_type, status, cursor_ms, position, run_until, error_count, last_error,
        last_success, started_at, synced_last_run, updated_at FROM sync_state WHERE true
    ON CONFLICT DO NOTHING;
