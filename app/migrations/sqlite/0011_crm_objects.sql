-- CRM records of every synced type (issue 13), per portal (portal_key as in portal_contacts),
-- their associations as labelled edges, and the fields the object API filters on.
-- properties: the record's HubSpot properties as last read (a JSON object of strings).
-- hs_updated_at: HubSpot's updatedAt (RFC 3339, ms, UTC: compares as text); a write never
-- replaces a newer version. edges_due = 1: the record's associations have not been read since
-- it was stored (the sync reads them in batches of 1,000 and clears the mark). archived_at:
-- HubSpot no longer has it (deleted, or merged into merged_into). fields: the local fields of
-- the portal's mappings (mapped and calculated values), as of the stored version; app_fields:
-- the app's own values of its app-owned fields (a sync never overwrites them).
CREATE TABLE IF NOT EXISTS crm_objects (
    portal_key    BIGINT NOT NULL,
    object_type   TEXT   NOT NULL,
    hubspot_id    TEXT   NOT NULL,
    properties    TEXT   NOT NULL,
    hs_updated_at TEXT,
    archived_at   BIGINT,
    merged_into   TEXT,
    fields        TEXT   NOT NULL DEFAULT '{}',
    app_fields    TEXT   NOT NULL DEFAULT '{}',
    edges_due     BIGINT NOT NULL DEFAULT 1,
    fetched_at    BIGINT NOT NULL,
    PRIMARY KEY (portal_key, object_type, hubspot_id)
);
CREATE INDEX IF NOT EXISTS crm_objects_edges_due ON crm_objects (portal_key, object_type, edges_due);

-- One row per association type of an edge, as read from its owning side (from_type).
CREATE TABLE IF NOT EXISTS crm_associations (
    portal_key BIGINT NOT NULL,
    from_type  TEXT   NOT NULL,
    from_id    TEXT   NOT NULL,
    to_type    TEXT   NOT NULL,
    to_id      TEXT   NOT NULL,
    category   TEXT   NOT NULL,
    type_id    BIGINT NOT NULL,
    label      TEXT,
    PRIMARY KEY (portal_key, from_type, from_id, to_type, to_id, category, type_id)
);
CREATE INDEX IF NOT EXISTS crm_associations_to ON crm_associations (portal_key, to_type, to_id);

-- A record's filterable fields: field name → value (text), kept with the record.
CREATE TABLE IF NOT EXISTS crm_fields (
    portal_key  BIGINT NOT NULL,
    object_type TEXT   NOT NULL,
    hubspot_id  TEXT   NOT NULL,
    field       TEXT   NOT NULL,
    value       TEXT   NOT NULL,
    PRIMARY KEY (portal_key, object_type, hubspot_id, field)
);
CREATE INDEX IF NOT EXISTS crm_fields_value ON crm_fields (portal_key, object_type, field, value);

-- Each portal's property mappings of a type (a JSON list of {field, hubspot?, owner, calculated?}),
-- checked against the portal's property definitions when set; MAPPINGS_FILE gives the default.
CREATE TABLE IF NOT EXISTS portal_mappings (
    portal_key  BIGINT NOT NULL,
    object_type TEXT   NOT NULL,
    mappings    TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (portal_key, object_type)
);

-- Local changes of app-owned properties on their way to HubSpot (batch updates by id). A
-- record's writes go in the order they were accepted: only the oldest pending write of a record
-- (its head) can be claimed, and it is claimed with every newer pending write of the record,
-- merged newer on top. A claim is a lease (lease_owner, lease_until): a worker that dies leaves
-- it to expire.
CREATE TABLE IF NOT EXISTS object_writes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    portal_key      BIGINT NOT NULL,
    object_type     TEXT   NOT NULL,
    object_id       TEXT   NOT NULL,
    properties      TEXT   NOT NULL,
    state           TEXT   NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX IF NOT EXISTS object_writes_due ON object_writes (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS object_writes_record ON object_writes (portal_key, object_type, object_id, state);

-- The object types a portal syncs, when it chose its own (a comma-separated list); others sync
-- SYNC_OBJECTS.
CREATE TABLE IF NOT EXISTS portal_sync_objects (
    portal_key BIGINT NOT NULL PRIMARY KEY,
    objects    TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);
