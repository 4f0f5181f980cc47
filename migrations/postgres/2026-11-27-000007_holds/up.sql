-- Every span a car is taken: a booking's window plus the car's turnaround buffer as it was
-- when the booking was made, or a block. One exclusion constraint over both kinds refuses
-- any overlap (the code maps car_holds_no_overlap to 409); a booking's hold has the
-- booking's id and goes when the booking is cancelled.
CREATE TABLE car_holds (
    id         TEXT PRIMARY KEY,
    car_id     TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('booking', 'block')),
    starts_at  TIMESTAMP NOT NULL,
    ends_at    TIMESTAMP NOT NULL,
    reason     TEXT,
    created_at TIMESTAMP NOT NULL,
    CONSTRAINT car_holds_window_check CHECK (ends_at > starts_at),
    CONSTRAINT car_holds_no_overlap EXCLUDE USING gist (
        car_id WITH =,
        tsrange(starts_at, ends_at, '[)') WITH &&
    )
);
CREATE INDEX car_holds_car_idx ON car_holds (car_id, starts_at);
CREATE INDEX car_holds_ends_idx ON car_holds (ends_at);

INSERT INTO car_holds (id, car_id, kind, starts_at, ends_at, created_at)
SELECT id, car_id, 'booking', pickup_time, dropoff_time, created_at
FROM bookings WHERE status <> 'cancelled';

ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap;
ALTER TABLE cars ADD COLUMN buffer_minutes INTEGER NOT NULL DEFAULT 0;
