CREATE TABLE car_words (
    word       TEXT NOT NULL,
    car_id     TEXT NOT NULL REFERENCES cars (id) ON DELETE CASCADE,
    geo_cell_1 BIGINT NOT NULL,
    PRIMARY KEY (word, car_id)
);
INSERT INTO car_words (word, car_id, geo_cell_1)
SELECT DISTINCT w, id, geo_cell_1 FROM cars, unnest(string_to_array(search_text, ' ')) AS w
WHERE w <> '';
CREATE INDEX car_words_car_idx ON car_words (car_id);
CREATE INDEX car_words_cell_idx ON car_words (word, geo_cell_1, car_id);

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
    RETURN NULL;
END
$$;

DROP INDEX cars_cell_0_idx;
DROP INDEX cars_cell_1_idx;
CREATE INDEX cars_cell_0_idx ON cars (geo_cell_0, latitude, longitude)
    WHERE is_active AND deleted_at IS NULL;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude)
    WHERE is_active AND deleted_at IS NULL;

DROP INDEX cars_geo_idx;
CREATE INDEX cars_geo_idx ON cars (latitude, longitude, is_active, deleted_at, price_per_day,
                                   seats, fuel_type, transmission, id);

DROP TABLE car_text_cells;
DROP TABLE text_words;
