-- See the PostgreSQL migration of the same name. SQLite writes one at a time; its triggers
-- cannot change NEW, so the row is stamped after it is written (the stamp's own update
-- leaves the stamp as it is: the WHEN clause).
ALTER TABLE cars ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
INSERT INTO data_versions (name, version) VALUES ('car_rows', 0);

CREATE TRIGGER cars_change_seq_insert AFTER INSERT ON cars
BEGIN
    UPDATE data_versions SET version = version + 1 WHERE name = 'car_rows';
    UPDATE cars SET change_seq = (SELECT version FROM data_versions WHERE name = 'car_rows')
    WHERE id = NEW.id;
END;
CREATE TRIGGER cars_change_seq_update AFTER UPDATE ON cars
WHEN NEW.change_seq = OLD.change_seq
BEGIN
    UPDATE data_versions SET version = version + 1 WHERE name = 'car_rows';
    UPDATE cars SET change_seq = (SELECT version FROM data_versions WHERE name = 'car_rows')
    WHERE id = NEW.id;
END;
CREATE INDEX cars_change_seq_idx ON cars (change_seq, id);

-- The per-cell counts the database searched by before are read no more.
DROP TRIGGER cars_cells_insert;
DROP TRIGGER cars_cells_delete;
DROP TRIGGER cars_cells_update;
DROP TABLE car_text_cells;
DROP TABLE car_cells;
DROP TABLE car_grids;
DROP INDEX cars_geo_idx;
DROP INDEX cars_cell_0_idx;
DROP INDEX cars_cell_1_idx;
DELETE FROM sqlite_stat1 WHERE tbl = 'cars' AND idx IN ('cars_geo_idx', 'cars_cell_0_idx', 'cars_cell_1_idx');
ALTER TABLE cars DROP COLUMN geo_cell_0;
ALTER TABLE cars DROP COLUMN geo_cell_1;

-- So are the facet counts the listing's totals were summed from.
DROP TRIGGER cars_facets_insert;
DROP TRIGGER cars_facets_update;
DROP TRIGGER cars_facets_delete;
DROP TABLE car_facets;
