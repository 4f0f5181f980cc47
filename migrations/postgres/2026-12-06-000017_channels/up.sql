-- A phone number (E.164) is stored unverified until its owner types the code sent to it;
-- SMS go only to verified numbers.
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN phone_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';

-- Codes sent by SMS to verify a number, stored as a keyed hash; the rows of the last hour
-- count against the sending limit.
CREATE TABLE phone_codes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    phone      TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    tries      INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX phone_codes_user_idx ON phone_codes (user_id, created_at);

-- Only the choices that differ from the defaults are stored.
CREATE TABLE notification_preferences (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    kind    TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, channel, kind)
);

-- The IANA zone a car's times are written in: given, or derived from its coordinates when
-- it is created (NULL for cars from before: derived when read).
ALTER TABLE cars ADD COLUMN time_zone TEXT;

-- A web subscription is the browser's PushSubscription: `token` holds its endpoint.
ALTER TABLE push_subscriptions ADD COLUMN p256dh TEXT;
ALTER TABLE push_subscriptions ADD COLUMN auth TEXT;

-- When each reminder was queued: claimed by a conditional update, so that one replica
-- queues it once.
ALTER TABLE bookings ADD COLUMN pickup_reminded_at TIMESTAMP;
ALTER TABLE bookings ADD COLUMN return_reminded_at TIMESTAMP;
ALTER TABLE bookings ADD COLUMN overdue_reminded_at TIMESTAMP;
CREATE INDEX bookings_reminders_idx ON bookings (status, pickup_time, dropoff_time);
