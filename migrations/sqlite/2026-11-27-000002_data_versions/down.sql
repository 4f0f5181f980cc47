DROP TRIGGER cars_version_delete;
DROP TRIGGER cars_version_update;
DROP TRIGGER cars_version_insert;
DROP TABLE data_versions;
