DROP TRIGGER cars_facets_truncate ON cars;
DROP TRIGGER cars_facets_delete ON cars;
DROP TRIGGER cars_facets_update ON cars;
DROP TRIGGER cars_facets_insert ON cars;
DROP FUNCTION count_car_facets();
DROP TABLE car_facets;
