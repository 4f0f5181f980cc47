DROP TRIGGER cars_change_seq ON cars;
DROP FUNCTION stamp_car_change();
DELETE FROM data_versions WHERE name = 'car_rows';
ALTER TABLE cars DROP COLUMN change_seq;
