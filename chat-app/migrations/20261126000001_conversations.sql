-- Conversations, one per signed-in session (kept across re-sign-in of the same user).
CREATE TABLE IF NOT EXISTS conversations (
    id         TEXT PRIMARY KEY NOT NULL,
    owner_oid  TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- The entries of a conversation, in order: each a JSON `transcript::Entry`.
CREATE TABLE IF NOT EXISTS conversation_entries (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    entry           TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- Which local sessions an identity-provider session (`sid`) started, for front-channel logout.
CREATE TABLE IF NOT EXISTS idp_sessions (
    sid        TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (sid, session_id)
);
