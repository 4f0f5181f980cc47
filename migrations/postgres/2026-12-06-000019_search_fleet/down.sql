DROP TRIGGER cars_change_seq ON cars;
DROP FUNCTION stamp_car_change();
DELETE FROM data_versions WHERE name = 'car_rows';
ALTER TABLE cars DROP COLUMN change_seq;

ALTER TABLE cars
    ADD COLUMN geo_cell_0 BIGINT GENERATED ALWAYS AS
        (floor((latitude + 90) * 256)::bigint * 100000 + floor((longitude + 180) * 256)::bigint)
        STORED,
    ADD COLUMN geo_cell_1 BIGINT GENERATED ALWAYS AS
        (floor((latitude + 90) * 64)::bigint * 100000 + floor((longitude + 180) * 64)::bigint)
        STORED;
CREATE INDEX cars_cell_0_idx ON cars (geo_cell_0, latitude, longitude) INCLUDE (search_text)
    WHERE is_active AND deleted_at IS NULL;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude)
    INCLUDE (search_text, id, seats, fuel_type, transmission, price_per_day)
    WHERE is_active AND deleted_at IS NULL;
CREATE INDEX cars_geo_idx ON cars (geo_cell_1, latitude, longitude, is_active, deleted_at,
                                   price_per_day, seats, fuel_type, transmission, id, search_text);

CREATE TABLE car_grids (
    grid     SMALLINT PRIMARY KEY,
    per_deg  INTEGER NOT NULL
);
INSERT INTO car_grids VALUES (0, 256), (1, 64), (2, 16), (3, 4);

CREATE TABLE car_cells (
    grid  SMALLINT NOT NULL,
    cell  BIGINT NOT NULL,
    cars  BIGINT NOT NULL,
    PRIMARY KEY (grid, cell) INCLUDE (cars)
);
INSERT INTO car_cells
SELECT g.grid,
       floor((c.latitude + 90) * g.per_deg)::bigint * 100000
           + floor((c.longitude + 180) * g.per_deg)::bigint,
       count(*)
FROM cars c CROSS JOIN car_grids g
WHERE c.is_active AND c.deleted_at IS NULL
GROUP BY 1, 2;

-- As car_facets: one statement per write, its rows changed in key order.
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
CREATE FUNCTION count_car_cells() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER cars_cells_insert AFTER INSERT ON cars
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_car_cells();
CREATE TRIGGER cars_cells_update AFTER UPDATE ON cars
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION count_car_cells();
CREATE TRIGGER cars_cells_delete AFTER DELETE ON cars
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_car_cells();
CREATE TRIGGER cars_cells_truncate AFTER TRUNCATE ON cars
FOR EACH STATEMENT EXECUTE FUNCTION count_car_cells();

CREATE TABLE car_facets (
    is_active     BOOLEAN NOT NULL,
    city_key      TEXT NOT NULL,
    brand_key     TEXT NOT NULL,
    fuel_type     TEXT NOT NULL,
    transmission  TEXT NOT NULL,
    seats         INTEGER NOT NULL,
    price_per_day BIGINT NOT NULL,
    cars          BIGINT NOT NULL,
    PRIMARY KEY (is_active, city_key, brand_key, fuel_type, transmission, seats, price_per_day)
);
INSERT INTO car_facets
SELECT is_active, city_key, brand_key, fuel_type, transmission, seats, price_per_day, count(*)
FROM cars WHERE deleted_at IS NULL
GROUP BY is_active, city_key, brand_key, fuel_type, transmission, seats, price_per_day;

CREATE FUNCTION count_car_facets() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    facet CONSTANT text :=
        'is_active, city_key, brand_key, fuel_type, transmission, seats, price_per_day';
    changes CONSTANT text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT *, 1 AS delta FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT *, -1 AS delta FROM old_rows'
        ELSE 'SELECT *, 1 AS delta FROM new_rows UNION ALL SELECT *, -1 FROM old_rows'
    END;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM car_facets;
        RETURN NULL;
    END IF;
    EXECUTE format(
        'INSERT INTO car_facets AS f SELECT %1$s, sum(delta) FROM (%2$s) AS changes
         WHERE deleted_at IS NULL GROUP BY %1$s HAVING sum(delta) <> 0 ORDER BY %1$s
         ON CONFLICT (%1$s) DO UPDATE SET cars = f.cars + EXCLUDED.cars',
        facet, changes);
    RETURN NULL;
END
$$;

CREATE TRIGGER cars_facets_insert AFTER INSERT ON cars
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_car_facets();
CREATE TRIGGER cars_facets_update AFTER UPDATE ON cars
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION count_car_facets();
CREATE TRIGGER cars_facets_delete AFTER DELETE ON cars
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_car_facets();
CREATE TRIGGER cars_facets_truncate AFTER TRUNCATE ON cars
FOR EACH STATEMENT EXECUTE FUNCTION count_car_facets();
