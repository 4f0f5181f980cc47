-- A listing filtered by city or brand walks that city's or brand's cars newest first and
-- stops at the page, instead of gathering all of them to sort: a city holding a fifth of a
-- large fleet took a sort of that fifth for each first visit of a filter set.
DROP INDEX cars_city_idx;
DROP INDEX cars_brand_idx;
CREATE INDEX cars_city_idx ON cars (city_key, created_at DESC, id, is_active)
    WHERE deleted_at IS NULL;
CREATE INDEX cars_brand_idx ON cars (brand_key, created_at DESC, id, is_active)
    WHERE deleted_at IS NULL;
