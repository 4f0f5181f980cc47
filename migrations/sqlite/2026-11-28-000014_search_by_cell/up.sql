-- See the PostgreSQL migration of the same name; the planner is told about ten cars share
-- a cell.
DROP INDEX cars_geo_idx;
CREATE INDEX cars_geo_idx ON cars (geo_cell_1, latitude, longitude, is_active, deleted_at,
                                   price_per_day, seats, fuel_type, transmission, id, search_text);
DELETE FROM sqlite_stat1 WHERE tbl = 'cars' AND idx = 'cars_geo_idx';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('cars', 'cars_geo_idx', '100000 10 1 1 1 1 1 1 1 1 1 1');
