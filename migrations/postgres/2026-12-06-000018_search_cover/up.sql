-- A search with a filter (fuel, gearbox, seats, price) or sorted by price reads every match
-- of its circle from cars_cell_1_idx; carrying the filtered columns makes that an index-only
-- scan (no visit to the table): 15.5 ms to 3.4 ms for a 25 km search with a seats filter
-- over 100,000 cars (docs/DESIGN.md, "Where a search's time goes").
DROP INDEX cars_cell_1_idx;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude)
    INCLUDE (search_text, id, seats, fuel_type, transmission, price_per_day)
    WHERE is_active AND deleted_at IS NULL;
