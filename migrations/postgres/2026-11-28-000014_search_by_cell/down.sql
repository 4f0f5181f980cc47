DROP INDEX cars_geo_idx;
CREATE INDEX cars_geo_idx ON cars (latitude, longitude, is_active, deleted_at, price_per_day,
                                   seats, fuel_type, transmission, id, search_text);
DROP INDEX cars_cell_1_idx;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude) INCLUDE (search_text)
    WHERE is_active AND deleted_at IS NULL;
