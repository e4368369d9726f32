-- The worker goes round the portals with due work (the next hub id after the last one served),
-- one index walk per question however long one portal's backlog is.
CREATE INDEX IF NOT EXISTS outbox_due_portal ON outbox (state, portal_id, next_attempt_at);
