-- See the PostgreSQL migration of the same name; the fixed planner statistics of
-- 2026-11-22-000007_planner_stats carry over to the wider indexes.
DROP INDEX cars_city_idx;
DROP INDEX cars_brand_idx;
CREATE INDEX cars_city_idx ON cars (city_key, created_at DESC, id, is_active)
    WHERE deleted_at IS NULL;
CREATE INDEX cars_brand_idx ON cars (brand_key, created_at DESC, id, is_active)
    WHERE deleted_at IS NULL;
DELETE FROM sqlite_stat1 WHERE tbl = 'cars' AND idx IN ('cars_city_idx', 'cars_brand_idx');
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('cars', 'cars_city_idx', '100000 100 1 1 1'),
    ('cars', 'cars_brand_idx', '100000 5000 1 1 1');
