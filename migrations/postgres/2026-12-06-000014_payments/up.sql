-- Payments (PAYMENT_PROVIDER mock or stripe): a booking waits for its payment as
-- pending_payment, holding its slot until hold_expires_at (its car_holds row carries the same
-- expires_at: an expired hold is deleted by the next booking's insert of that car, since a
-- constraint cannot read the clock), then confirmed, or expired. The ledger has one row per
-- movement at the provider; a booking's lines say what is owed.
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_status_check CHECK (status IN
    ('pending_payment', 'confirmed', 'active', 'completed', 'cancelled', 'expired'));
ALTER TABLE bookings ADD COLUMN hold_expires_at TIMESTAMP;
ALTER TABLE bookings ADD COLUMN balance_due BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bookings ADD COLUMN disputed BOOLEAN NOT NULL DEFAULT FALSE;
-- The provider's saved card this booking's later charges use.
ALTER TABLE bookings ADD COLUMN payment_method TEXT;
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
