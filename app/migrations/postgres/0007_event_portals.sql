-- PostgreSQL: the same schema as ../sqlite/0007_event_portals.sql.
-- Webhook events carry their portal (HubSpot's portalId); an event for a portal that is not
-- connected here is recorded and refused: processed at once, never applied, with the reason.
ALTER TABLE webhook_events ADD COLUMN IF NOT EXISTS portal_id BIGINT;
ALTER TABLE webhook_events ADD COLUMN IF NOT EXISTS refused TEXT;
