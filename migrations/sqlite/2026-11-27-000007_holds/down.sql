ALTER TABLE cars DROP COLUMN buffer_minutes;
DROP TABLE car_holds;
