DROP INDEX cars_city_idx;
DROP INDEX cars_brand_idx;
CREATE INDEX cars_city_idx ON cars (city_key) WHERE deleted_at IS NULL;
CREATE INDEX cars_brand_idx ON cars (brand_key) WHERE deleted_at IS NULL;
DELETE FROM sqlite_stat1 WHERE tbl = 'cars' AND idx IN ('cars_city_idx', 'cars_brand_idx');
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('cars', 'cars_city_idx', '100000 100'),
    ('cars', 'cars_brand_idx', '100000 5000');
