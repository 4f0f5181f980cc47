-- PostgreSQL's cars_cell_1_idx now carries the filtered columns; SQLite's cars_geo_idx
-- carried them already.
SELECT 1;
