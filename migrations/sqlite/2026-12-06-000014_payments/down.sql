DROP TABLE payment_events;
DROP TABLE payment_customers;
DROP TABLE payment_setups;
DROP TABLE payments;
ALTER TABLE cars DROP COLUMN deposit_amount;
DELETE FROM car_holds WHERE expires_at IS NOT NULL;
ALTER TABLE car_holds DROP COLUMN expires_at;
CREATE TABLE bookings_old (
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
    lines         TEXT,
    pickup_record TEXT,
    return_record TEXT,
    day_rate      BIGINT,
    CONSTRAINT bookings_window_check CHECK (dropoff_time > pickup_time)
);
INSERT INTO bookings_old SELECT id, user_id, car_id, pickup_time, dropoff_time, days,
    total_price, currency,
    CASE WHEN status IN ('pending_payment', 'expired') THEN 'cancelled' ELSE status END,
    created_at, updated_at, cancelled_at, picked_up_at, returned_at, lines, pickup_record,
    return_record, day_rate
FROM bookings;
DROP TABLE bookings;
ALTER TABLE bookings_old RENAME TO bookings;
CREATE INDEX bookings_user_idx ON bookings (user_id, created_at DESC);
CREATE INDEX bookings_car_idx ON bookings (car_id, pickup_time);
CREATE INDEX bookings_created_idx ON bookings (created_at DESC);
