DROP INDEX cars_city_idx;
DROP INDEX cars_brand_idx;
CREATE INDEX cars_city_idx ON cars (city_key) WHERE deleted_at IS NULL;
CREATE INDEX cars_brand_idx ON cars (brand_key) WHERE deleted_at IS NULL;
