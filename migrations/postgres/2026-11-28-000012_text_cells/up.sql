-- Text search counts cars by their text, not one by one. A fleet's cars share their
-- searchable text (name, brand, model and features: `cars.search_text`) by the dozen, so
-- text_words files each distinct text under its words (which texts a query matches is a
-- question about texts, not cars), and car_text_cells keeps, per cell of the four grids of
-- car_cells, how many searchable cars carry each text: a text search counts its circle as
-- a search without text does (src/search/cells.rs), from the cells of matching texts.
-- A text no car carries any more keeps its words; it matches, and counts, nothing.
CREATE TABLE text_words (
    word TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (word, text)
);
INSERT INTO text_words
SELECT DISTINCT w, t.search_text
FROM (SELECT DISTINCT search_text FROM cars) AS t, unnest(string_to_array(t.search_text, ' ')) AS w
WHERE w <> '';

CREATE TABLE car_text_cells (
    grid  SMALLINT NOT NULL,
    cell  BIGINT NOT NULL,
    text  TEXT NOT NULL,
    cars  BIGINT NOT NULL,
    PRIMARY KEY (grid, cell, text) INCLUDE (cars)
);
INSERT INTO car_text_cells
SELECT g.grid,
       floor((c.latitude + 90) * g.per_deg)::bigint * 100000
           + floor((c.longitude + 180) * g.per_deg)::bigint,
       c.search_text,
       count(*)
FROM cars c CROSS JOIN car_grids g
WHERE c.is_active AND c.deleted_at IS NULL
GROUP BY 1, 2, 3;

-- The cars of a circle's edge cells are measured from these indexes alone, text included.
-- PostgreSQL also reads a search's page without filters from cars_cell_1_idx, which
-- therefore carries the id too: a city centre's cell holds thousands of cars to look up.
DROP INDEX cars_cell_0_idx;
DROP INDEX cars_cell_1_idx;
CREATE INDEX cars_cell_0_idx ON cars (geo_cell_0, latitude, longitude) INCLUDE (search_text)
    WHERE is_active AND deleted_at IS NULL;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude) INCLUDE (search_text, id)
    WHERE is_active AND deleted_at IS NULL;

-- The search's own index leads with the car's cell of the second grid (about 1.7 km), so
-- that a search looks up the few cells its circle's box covers instead of walking every car
-- of the box's band of latitude across the whole map (a band that grows with the fleet),
-- and carries the text, so that the page of a text search is read from the index alone.
DROP INDEX cars_geo_idx;
CREATE INDEX cars_geo_idx ON cars (geo_cell_1, latitude, longitude, is_active, deleted_at,
                                   price_per_day, seats, fuel_type, transmission, id, search_text);

-- The trigger of car_cells keeps both tables, car_cells' rows first, each in key order.
CREATE OR REPLACE FUNCTION count_car_cells() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes CONSTANT text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT *, 1 AS delta FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT *, -1 AS delta FROM old_rows'
        ELSE 'SELECT *, 1 AS delta FROM new_rows UNION ALL SELECT *, -1 FROM old_rows'
    END;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM car_cells;
        DELETE FROM car_text_cells;
        RETURN NULL;
    END IF;
    EXECUTE format(
        'INSERT INTO car_cells AS k
         SELECT g.grid, floor((c.latitude + 90) * g.per_deg)::bigint * 100000
                        + floor((c.longitude + 180) * g.per_deg)::bigint, sum(c.delta)
         FROM (%s) AS c CROSS JOIN car_grids g
         WHERE c.is_active AND c.deleted_at IS NULL
         GROUP BY 1, 2 HAVING sum(c.delta) <> 0 ORDER BY 1, 2
         ON CONFLICT (grid, cell) DO UPDATE SET cars = k.cars + EXCLUDED.cars',
        changes);
    EXECUTE format(
        'INSERT INTO car_text_cells AS k
         SELECT g.grid, floor((c.latitude + 90) * g.per_deg)::bigint * 100000
                        + floor((c.longitude + 180) * g.per_deg)::bigint,
                c.search_text, sum(c.delta)
         FROM (%s) AS c CROSS JOIN car_grids g
         WHERE c.is_active AND c.deleted_at IS NULL
         GROUP BY 1, 2, 3 HAVING sum(c.delta) <> 0 ORDER BY 1, 2, 3
         ON CONFLICT (grid, cell, text) DO UPDATE SET cars = k.cars + EXCLUDED.cars',
        changes);
    RETURN NULL;
END
$$;

DROP TABLE car_words;
ANALYZE text_words;
ANALYZE car_text_cells;
