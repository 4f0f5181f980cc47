-- Search answers from a copy of the searchable cars in each process, brought up to date
-- before each search by reading the rows written since (src/search/fleet.rs). Every row
-- written takes the next number of `car_rows`, whose row lock the writer holds until it
-- commits: committed numbers never leave a gap a reader could step over.
ALTER TABLE cars ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0;
INSERT INTO data_versions (name, version) VALUES ('car_rows', 0);

CREATE FUNCTION stamp_car_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_versions SET version = version + 1 WHERE name = 'car_rows'
    RETURNING version INTO NEW.change_seq;
    RETURN NEW;
END
$$;

CREATE TRIGGER cars_change_seq BEFORE INSERT OR UPDATE ON cars
FOR EACH ROW EXECUTE FUNCTION stamp_car_change();
CREATE INDEX cars_change_seq_idx ON cars (change_seq, id);

-- The per-cell counts the database searched by before are read no more.
DROP TRIGGER cars_cells_insert ON cars;
DROP TRIGGER cars_cells_update ON cars;
DROP TRIGGER cars_cells_delete ON cars;
DROP TRIGGER cars_cells_truncate ON cars;
DROP FUNCTION count_car_cells();
DROP TABLE car_text_cells;
DROP TABLE car_cells;
DROP TABLE car_grids;
ALTER TABLE cars DROP COLUMN geo_cell_0, DROP COLUMN geo_cell_1;

-- So are the facet counts the listing's totals were summed from.
DROP TRIGGER cars_facets_insert ON cars;
DROP TRIGGER cars_facets_update ON cars;
DROP TRIGGER cars_facets_delete ON cars;
DROP TRIGGER cars_facets_truncate ON cars;
DROP FUNCTION count_car_facets();
DROP TABLE car_facets;
