-- When a conversation last changed, so that SQLite forgets it a session's lifetime later, as
-- Redis's key expiry does (a user who never signs out no longer leaves their history for ever).
ALTER TABLE conversations ADD COLUMN changed_at INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET changed_at = created_at;
CREATE INDEX IF NOT EXISTS conversations_changed_at ON conversations (changed_at);
CREATE INDEX IF NOT EXISTS idp_sessions_created_at ON idp_sessions (created_at);
