DROP INDEX cars_cell_1_idx;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude) INCLUDE (search_text, id)
    WHERE is_active AND deleted_at IS NULL;
