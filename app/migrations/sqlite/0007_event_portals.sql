-- Webhook events carry their portal (HubSpot's portalId); an event for a portal that is not
-- connected here is recorded and refused: processed at once, never applied, with the reason.
ALTER TABLE webhook_events ADD COLUMN portal_id BIGINT;
ALTER TABLE webhook_events ADD COLUMN refused TEXT;
