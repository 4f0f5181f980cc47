-- See the PostgreSQL migration of the same name. SQLite has row triggers only.
CREATE TABLE data_versions (
    name    TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO data_versions (name, version) VALUES ('cars', 0);

CREATE TRIGGER cars_version_insert AFTER INSERT ON cars
BEGIN UPDATE data_versions SET version = version + 1 WHERE name = 'cars'; END;
CREATE TRIGGER cars_version_update AFTER UPDATE ON cars
BEGIN UPDATE data_versions SET version = version + 1 WHERE name = 'cars'; END;
CREATE TRIGGER cars_version_delete AFTER DELETE ON cars
BEGIN UPDATE data_versions SET version = version + 1 WHERE name = 'cars'; END;
