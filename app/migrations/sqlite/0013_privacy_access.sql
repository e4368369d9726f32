-- Privacy and access (issue 15).
-- Named users with a role; their API tokens stored as SHA-256 of the token (a token is 32
-- random bytes, so the hash cannot be reversed by guessing). A revoked user or token is kept,
-- with revoked_at, so the audit's names keep meaning something.
CREATE TABLE IF NOT EXISTS app_users (
    name        TEXT    PRIMARY KEY,
    role        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    created_by  TEXT    NOT NULL,
    revoked_at  BIGINT
);
CREATE TABLE IF NOT EXISTS user_tokens (
    token_hash  TEXT    PRIMARY KEY,
    user_name   TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX IF NOT EXISTS user_tokens_user ON user_tokens (user_name);

-- The audit, complete: who (user, role), what (action, the subject as a keyed hash, HubSpot
-- id), the outcome, from where (ip, user agent), when (at_ms on the app's clock). Rows are only
-- ever inserted; the retention cleanup deletes old ones, and an erasure (GDPR) replaces the
-- erased person's subject_hash with the erasure's reference.
ALTER TABLE audit_log ADD COLUMN at_ms BIGINT;
ALTER TABLE audit_log ADD COLUMN role TEXT;
ALTER TABLE audit_log ADD COLUMN subject_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hubspot_id TEXT;
ALTER TABLE audit_log ADD COLUMN portal_key BIGINT;
ALTER TABLE audit_log ADD COLUMN ip TEXT;
ALTER TABLE audit_log ADD COLUMN user_agent TEXT;
CREATE INDEX IF NOT EXISTS audit_log_at_ms ON audit_log (at_ms);
CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log (subject_hash);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, at_ms);

-- The contact cache, encrypted at rest: `contact` is sealed (AES-256-GCM under the key ring,
-- bound to its portal and HubSpot id), and the cache is found by keyed hashes of the E.164
-- phone and the email, never by the values. The clear columns stay (NULL) for the release
-- before this one; cached rows in clear are dropped (they are re-read from HubSpot), as is the
-- single-account copy the release before the last one kept.
ALTER TABLE portal_contacts ADD COLUMN phone_hash TEXT;
ALTER TABLE portal_contacts ADD COLUMN email_hash TEXT;
DELETE FROM portal_contacts;
DELETE FROM contact_cache;
CREATE INDEX IF NOT EXISTS portal_contacts_phone_hash ON portal_contacts (portal_key, phone_hash);
CREATE INDEX IF NOT EXISTS portal_contacts_email_hash ON portal_contacts (portal_key, email_hash);

-- Feature flags at runtime: a row overrides the environment's default; every process reads
-- the table every FLAGS_REFRESH.
CREATE TABLE IF NOT EXISTS feature_flags (
    name        TEXT    PRIMARY KEY,
    enabled     BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    updated_by  TEXT    NOT NULL
);

-- Each user's contact searches (the outbound flow's `recent`): the query sealed, its keyed hash
-- (a phone or email query is found by a privacy export), and the HubSpot ids it found.
CREATE TABLE IF NOT EXISTS search_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name   TEXT    NOT NULL,
    portal_key  BIGINT  NOT NULL,
    query       TEXT    NOT NULL,
    query_hash  TEXT    NOT NULL,
    result_ids  TEXT    NOT NULL,
    at_ms       BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS search_history_user ON search_history (user_name, id);
CREATE INDEX IF NOT EXISTS search_history_query ON search_history (query_hash);

-- HubSpot GDPR deletes asked for by an erasure, sent by the outbox worker: the contact by its
-- HubSpot id, or by its email (sealed; cleared once HubSpot has it). state: pending | sent |
-- dead.
CREATE TABLE IF NOT EXISTS privacy_deletes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    portal_key      BIGINT  NOT NULL,
    hubspot_id      TEXT,
    email_sealed    TEXT,
    reference       TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS privacy_deletes_due ON privacy_deletes (state, next_attempt_at);

-- Contacts erased here (by HubSpot id: no personal data): a webhook, a sync or a lookup in
-- flight when the erasure ran, or HubSpot before its GDPR delete lands, must not bring them
-- back. The cache and the synced records refuse these ids.
CREATE TABLE IF NOT EXISTS privacy_erased (
    portal_key  BIGINT  NOT NULL,
    hubspot_id  TEXT    NOT NULL,
    reference   TEXT    NOT NULL,
    erased_at   BIGINT  NOT NULL,
    PRIMARY KEY (portal_key, hubspot_id)
);
