DROP TABLE payment_events;
DROP TABLE payment_customers;
DROP TABLE payment_setups;
DROP TABLE payments;
ALTER TABLE cars DROP COLUMN deposit_amount;
DELETE FROM car_holds WHERE expires_at IS NOT NULL;
ALTER TABLE car_holds DROP COLUMN expires_at;
DROP INDEX bookings_hold_idx;
ALTER TABLE bookings DROP COLUMN payment_method;
ALTER TABLE bookings DROP COLUMN disputed;
ALTER TABLE bookings DROP COLUMN balance_due;
ALTER TABLE bookings DROP COLUMN hold_expires_at;
UPDATE bookings SET status = 'cancelled' WHERE status IN ('pending_payment', 'expired');
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_status_check
    CHECK (status IN ('confirmed', 'active', 'completed', 'cancelled'));
