-- Existing conversations count as changed now: one may be older than a session and still in use
-- (a conversation is kept across sign-ins), and the first cleanup runs at start.
UPDATE conversations SET changed_at = CAST(strftime('%s', 'now') AS INTEGER);
