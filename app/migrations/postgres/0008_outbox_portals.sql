-- PostgreSQL: the same schema as ../sqlite/0008_outbox_portals.sql.
-- A contact write belongs to a portal (NULL: the single account of HUBSPOT_ACCESS_TOKEN).
-- Order, coalescing and replay hold per (portal, email); a batch is one portal's.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS portal_id BIGINT;
CREATE INDEX IF NOT EXISTS outbox_portal_email ON outbox (portal_id, email, state);
