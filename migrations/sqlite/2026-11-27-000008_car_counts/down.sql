DROP TRIGGER cars_counted_update;
DROP TRIGGER cars_counted_delete;
DROP TRIGGER cars_counted_insert;
DROP TABLE car_counts;
