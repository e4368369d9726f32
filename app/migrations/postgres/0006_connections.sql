-- PostgreSQL: the same schema as ../sqlite/0006_connections.sql.
-- One row per connected HubSpot portal (an OAuth install, or the private-app token of
-- HUBSPOT_ACCESS_TOKEN). Tokens are sealed (AES-256-GCM, crypto.rs): v1.<key id>.<base64>.
-- Times are Unix ms. refresh_owner/refresh_until: the lease of the one process refreshing.
CREATE TABLE IF NOT EXISTS hubspot_connections (
    portal_id     BIGINT  PRIMARY KEY,
    kind          TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    access_token  TEXT,
    refresh_token TEXT,
    expires_at    BIGINT,
    refreshed_at  BIGINT,
    refresh_owner TEXT,
    refresh_until BIGINT,
    account       TEXT,
    error_count   BIGINT  NOT NULL DEFAULT 0,
    last_error    TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- The OAuth install's single-use state, shared by every instance: stored as the SHA-256 of
-- the state and of the browser cookie it is bound to, never in clear.
CREATE TABLE IF NOT EXISTS oauth_states (
    state_hash   TEXT    PRIMARY KEY,
    browser_hash TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    used_at      BIGINT
);
