-- When a conversation last changed, so that SQLite forgets it a session's lifetime later, as
-- Redis's key expiry does (a user who never signs out no longer leaves their history for ever).
-- Existing conversations count as changed now: one may be older than a session and still in use
-- (a conversation is kept across sign-ins). A binary from before this migration refuses to open
-- the file (sqlx finds a migration it does not know), so rows never get the default 0 from one.
ALTER TABLE conversations ADD COLUMN changed_at INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET changed_at = CAST(strftime('%s', 'now') AS INTEGER);
CREATE INDEX IF NOT EXISTS conversations_changed_at ON conversations (changed_at);
CREATE INDEX IF NOT EXISTS idp_sessions_created_at ON idp_sessions (created_at);
