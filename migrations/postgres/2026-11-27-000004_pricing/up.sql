-- A car's pricing rules (weekend price, discounts, seasons) as JSON in minor units, NULL
-- for none; a booking's price lines as they were when it was made (NULL for bookings made
-- before lines existed: their one line is the rental at total_price).
ALTER TABLE cars ADD COLUMN pricing TEXT;
ALTER TABLE bookings ADD COLUMN lines TEXT;
