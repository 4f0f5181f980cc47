-- The database itself refuses two non-cancelled bookings of one car whose half-open
-- [pickup, dropoff) intervals overlap; the code maps bookings_no_overlap to 409.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE bookings (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    car_id       TEXT NOT NULL,
    pickup_time  TIMESTAMP NOT NULL,
    dropoff_time TIMESTAMP NOT NULL,
    days         INTEGER NOT NULL,
    total_price  BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('confirmed', 'active', 'completed', 'cancelled')),
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    cancelled_at TIMESTAMP,
    picked_up_at TIMESTAMP,
    returned_at  TIMESTAMP,
    CONSTRAINT bookings_window_check CHECK (dropoff_time > pickup_time),
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (
        car_id WITH =,
        tsrange(pickup_time, dropoff_time, '[)') WITH &&
    ) WHERE (status <> 'cancelled')
);
CREATE INDEX bookings_user_idx ON bookings (user_id, created_at DESC);
CREATE INDEX bookings_car_idx ON bookings (car_id, pickup_time);
CREATE INDEX bookings_created_idx ON bookings (created_at DESC);

-- First answers to POST /bookings by (user, Idempotency-Key); status_code is NULL while
-- the first request is still being served.
CREATE TABLE idempotency_keys (
    user_id      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code  INTEGER,
    response     TEXT,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
