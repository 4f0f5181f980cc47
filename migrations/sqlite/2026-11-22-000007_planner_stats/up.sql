-- Fixed planner statistics for cars. Without them SQLite takes `is_active = ?` and
-- `deleted_at IS NULL` for narrow and walks the listing index on a search, touching every car;
-- in truth nearly every car is active and undeleted, and only the coordinates narrow. These
-- rows say so, so search walks cars_geo_idx. (PostgreSQL keeps real statistics itself.)
ANALYZE sqlite_schema;
DELETE FROM sqlite_stat1 WHERE tbl = 'cars';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('cars', 'cars_listing_idx', '100000 50000 50000 1 1'),
    ('cars', 'cars_geo_idx', '100000 2 1 1 1 1 1 1 1 1'),
    ('cars', 'cars_city_idx', '100000 100'),
    ('cars', 'cars_brand_idx', '100000 5000');
