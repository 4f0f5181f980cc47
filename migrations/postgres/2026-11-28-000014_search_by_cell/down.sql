DROP INDEX cars_geo_idx;
CREATE INDEX cars_geo_idx ON cars (latitude, longitude, is_active, deleted_at, price_per_day,
                                   seats, fuel_type, transmission, id, search_text);
