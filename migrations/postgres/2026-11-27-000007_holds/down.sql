ALTER TABLE cars DROP COLUMN buffer_minutes;
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist (
    car_id WITH =,
    tsrange(pickup_time, dropoff_time, '[)') WITH &&
) WHERE (status <> 'cancelled');
DROP TABLE car_holds;
