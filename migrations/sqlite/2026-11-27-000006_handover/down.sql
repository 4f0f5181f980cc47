ALTER TABLE cars DROP COLUMN extra_km_price;
ALTER TABLE cars DROP COLUMN mileage_limit_km_per_day;
ALTER TABLE bookings DROP COLUMN day_rate;
ALTER TABLE bookings DROP COLUMN return_record;
ALTER TABLE bookings DROP COLUMN pickup_record;
