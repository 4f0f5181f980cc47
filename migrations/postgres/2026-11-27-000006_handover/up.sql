-- What happened at pickup and at return (JSON: time, odometer, fuel, notes, damages), and
-- the daily price a booking was made at (late fees are charged at it; NULL for bookings
-- made before it was kept). A car's mileage allowance and the price of a km beyond it.
ALTER TABLE bookings ADD COLUMN pickup_record TEXT;
ALTER TABLE bookings ADD COLUMN return_record TEXT;
ALTER TABLE bookings ADD COLUMN day_rate BIGINT;
ALTER TABLE cars ADD COLUMN mileage_limit_km_per_day INTEGER;
ALTER TABLE cars ADD COLUMN extra_km_price BIGINT;
