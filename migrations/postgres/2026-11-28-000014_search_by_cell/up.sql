-- The search's index leads with the car's cell of the second grid (about 1.7 km), so that
-- a search looks up the few cells its circle's box covers instead of walking every car of
-- the box's band of latitude across the whole map: that band grows with the fleet.
DROP INDEX cars_geo_idx;
CREATE INDEX cars_geo_idx ON cars (geo_cell_1, latitude, longitude, is_active, deleted_at,
                                   price_per_day, seats, fuel_type, transmission, id, search_text);
-- PostgreSQL reads a search's page without filters from the edge index, which therefore
-- carries the id too: a city centre's cell holds thousands of cars to look up otherwise.
DROP INDEX cars_cell_1_idx;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude) INCLUDE (search_text, id)
    WHERE is_active AND deleted_at IS NULL;
