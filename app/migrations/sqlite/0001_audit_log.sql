-- Who looked up or searched which contact, and when. Phone numbers are stored hashed, emails
-- masked: the log proves access happened without becoming a second copy of personal data.
CREATE TABLE IF NOT EXISTS audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    outcome    TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
