DROP TRIGGER cars_facets_update;
DROP TRIGGER cars_facets_delete;
DROP TRIGGER cars_facets_insert;
DROP TABLE car_facets;
