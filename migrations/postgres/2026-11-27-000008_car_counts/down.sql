DROP TRIGGER cars_counted_truncate ON cars;
DROP TRIGGER cars_counted_delete ON cars;
DROP TRIGGER cars_counted_update ON cars;
DROP TRIGGER cars_counted_insert ON cars;
DROP FUNCTION count_cars();
DROP TABLE car_counts;
