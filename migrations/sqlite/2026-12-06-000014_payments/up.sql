-- Payments (PAYMENT_PROVIDER mock or stripe): a booking waits for its payment as
-- pending_payment, holding its slot until hold_expires_at (its car_holds row carries the same
-- expires_at: an expired hold is deleted by the next booking's insert of that car), then
-- confirmed, or expired. SQLite cannot change a CHECK constraint: the bookings table is
-- rebuilt with the two new states and the new columns.
CREATE TABLE bookings_new (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    car_id          TEXT NOT NULL,
    pickup_time     TIMESTAMP NOT NULL,
    dropoff_time    TIMESTAMP NOT NULL,
    days            INTEGER NOT NULL,
    total_price     BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN
        ('pending_payment', 'confirmed', 'active', 'completed', 'cancelled', 'expired')),
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    cancelled_at    TIMESTAMP,
    picked_up_at    TIMESTAMP,
    returned_at     TIMESTAMP,
    lines           TEXT,
    pickup_record   TEXT,
    return_record   TEXT,
    day_rate        BIGINT,
    hold_expires_at TIMESTAMP,
    balance_due     BIGINT NOT NULL DEFAULT 0,
    disputed        BOOLEAN NOT NULL DEFAULT FALSE,
    payment_method  TEXT,
    CONSTRAINT bookings_window_check CHECK (dropoff_time > pickup_time)
);
INSERT INTO bookings_new (id, user_id, car_id, pickup_time, dropoff_time, days, total_price,
    currency, status, created_at, updated_at, cancelled_at, picked_up_at, returned_at, lines,
    pickup_record, return_record, day_rate)
SELECT id, user_id, car_id, pickup_time, dropoff_time, days, total_price, currency, status,
    created_at, updated_at, cancelled_at, picked_up_at, returned_at, lines, pickup_record,
    return_record, day_rate
FROM bookings;
DROP TABLE bookings;
ALTER TABLE bookings_new RENAME TO bookings;
CREATE INDEX bookings_user_idx ON bookings (user_id, created_at DESC);
CREATE INDEX bookings_car_idx ON bookings (car_id, pickup_time);
CREATE INDEX bookings_created_idx ON bookings (created_at DESC);
CREATE INDEX bookings_hold_idx ON bookings (hold_expires_at) WHERE status = 'pending_payment';

ALTER TABLE car_holds ADD COLUMN expires_at TIMESTAMP;

ALTER TABLE cars ADD COLUMN deposit_amount BIGINT NOT NULL DEFAULT 0;

CREATE TABLE payments (
    id              TEXT PRIMARY KEY,
    booking_id      TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('rental', 'deposit', 'charge', 'refund')),
    status          TEXT NOT NULL,
    -- hundredths of the currency's major unit, as every amount here
    amount          BIGINT NOT NULL CHECK (amount >= 0),
    captured_amount BIGINT NOT NULL DEFAULT 0,
    refunded_amount BIGINT NOT NULL DEFAULT 0,
    currency        TEXT NOT NULL,
    provider        TEXT NOT NULL,
    provider_ref    TEXT,
    -- a refund's payment; a re-authorised deposit's predecessor
    parent_id       TEXT,
    reason          TEXT,
    client_secret   TEXT,
    failure_message TEXT,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);
CREATE INDEX payments_booking_idx ON payments (booking_id, created_at);
CREATE INDEX payments_created_idx ON payments (created_at);
CREATE UNIQUE INDEX payments_ref_idx ON payments (provider, provider_ref);

-- A card saved for a booking's later charges (a SetupIntent at the provider).
CREATE TABLE payment_setups (
    id             TEXT PRIMARY KEY,
    booking_id     TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    provider       TEXT NOT NULL,
    provider_ref   TEXT,
    client_secret  TEXT,
    status         TEXT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX payment_setups_ref_idx ON payment_setups (provider, provider_ref);

-- The provider's customer of each user, made on first need.
CREATE TABLE payment_customers (
    user_id      TEXT NOT NULL,
    provider     TEXT NOT NULL,
    customer_ref TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, provider)
);

-- Webhook events applied, so that each is applied once.
CREATE TABLE payment_events (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
