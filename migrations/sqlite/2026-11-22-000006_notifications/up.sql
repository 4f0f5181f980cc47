-- Messages decided on, written in the transaction of the change that caused them; an outbox
-- job ('email', the message id) gets each one delivered. status/attempts/sent_at are what
-- GET /notifications shows.
CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    channel    TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    text_body  TEXT NOT NULL,
    html_body  TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts   INTEGER NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    sent_at    TIMESTAMP
);
CREATE INDEX messages_user_idx ON messages (user_id, created_at DESC);

-- Device tokens for push notifications (delivery to a push service comes later).
CREATE TABLE push_subscriptions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    token      TEXT NOT NULL,
    platform   TEXT NOT NULL CHECK (platform IN ('web', 'ios', 'android')),
    created_at TIMESTAMP NOT NULL,
    CONSTRAINT push_subscriptions_user_token_key UNIQUE (user_id, token)
);
