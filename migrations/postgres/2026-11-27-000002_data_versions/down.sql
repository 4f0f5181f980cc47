DROP TRIGGER cars_version ON cars;
DROP FUNCTION bump_cars_version();
DROP TABLE data_versions;
