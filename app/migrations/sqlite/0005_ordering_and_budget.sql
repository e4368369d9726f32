-- Per-contact order (see outbox.rs): a dead item that is replayed becomes a new item at the end
-- of the queue; the dead row is kept as `replayed`, pointing at it.
ALTER TABLE outbox ADD COLUMN replayed_as BIGINT;

-- HubSpot's budget shared by every process on this database: one row per call in the rolling
-- window of its bucket (a hash of the token and the kind of limit). counts_at: when the call
-- counts, Unix ms (its start while in flight, its end once over).
CREATE TABLE IF NOT EXISTS hubspot_budget (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket    TEXT    NOT NULL,
    counts_at BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS hubspot_budget_window ON hubspot_budget (bucket, counts_at);
