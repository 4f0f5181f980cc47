DROP TRIGGER cars_change_seq_insert;
DROP TRIGGER cars_change_seq_update;
DROP INDEX cars_change_seq_idx;
DELETE FROM data_versions WHERE name = 'car_rows';
ALTER TABLE cars DROP COLUMN change_seq;

ALTER TABLE cars ADD COLUMN geo_cell_0 INTEGER GENERATED ALWAYS AS
    (CAST((latitude + 90) * 256 AS INTEGER) * 100000 + CAST((longitude + 180) * 256 AS INTEGER))
    VIRTUAL;
ALTER TABLE cars ADD COLUMN geo_cell_1 INTEGER GENERATED ALWAYS AS
    (CAST((latitude + 90) * 64 AS INTEGER) * 100000 + CAST((longitude + 180) * 64 AS INTEGER))
    VIRTUAL;
CREATE INDEX cars_cell_0_idx ON cars (geo_cell_0, latitude, longitude, search_text)
    WHERE is_active AND deleted_at IS NULL;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude, search_text)
    WHERE is_active AND deleted_at IS NULL;
CREATE INDEX cars_geo_idx ON cars (geo_cell_1, latitude, longitude, is_active, deleted_at,
                                   price_per_day, seats, fuel_type, transmission, id, search_text);
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('cars', 'cars_geo_idx', '100000 10 1 1 1 1 1 1 1 1 1 1');

CREATE TABLE car_grids (
    grid     INTEGER PRIMARY KEY,
    per_deg  INTEGER NOT NULL
);
INSERT INTO car_grids VALUES (0, 256), (1, 64), (2, 16), (3, 4);

CREATE TABLE car_cells (
    grid  INTEGER NOT NULL,
    cell  BIGINT NOT NULL,
    cars  BIGINT NOT NULL,
    PRIMARY KEY (grid, cell)
) WITHOUT ROWID;
INSERT INTO car_cells
SELECT g.grid,
       CAST((c.latitude + 90) * g.per_deg AS INTEGER) * 100000
           + CAST((c.longitude + 180) * g.per_deg AS INTEGER),
       count(*)
FROM cars c CROSS JOIN car_grids g
WHERE c.is_active AND c.deleted_at IS NULL
GROUP BY 1, 2;

CREATE TABLE car_text_cells (
    grid  INTEGER NOT NULL,
    cell  BIGINT NOT NULL,
    text  TEXT NOT NULL,
    cars  BIGINT NOT NULL,
    PRIMARY KEY (grid, cell, text)
) WITHOUT ROWID;
INSERT INTO car_text_cells
SELECT g.grid,
       CAST((c.latitude + 90) * g.per_deg AS INTEGER) * 100000
           + CAST((c.longitude + 180) * g.per_deg AS INTEGER),
       c.search_text,
       count(*)
FROM cars c CROSS JOIN car_grids g
WHERE c.is_active AND c.deleted_at IS NULL
GROUP BY 1, 2, 3;

CREATE TRIGGER cars_cells_insert AFTER INSERT ON cars
WHEN NEW.is_active AND NEW.deleted_at IS NULL
BEGIN
    INSERT INTO car_cells (grid, cell, cars)
    SELECT grid, CAST((NEW.latitude + 90) * per_deg AS INTEGER) * 100000
                 + CAST((NEW.longitude + 180) * per_deg AS INTEGER), 1
    FROM car_grids WHERE true
    ON CONFLICT (grid, cell) DO UPDATE SET cars = cars + 1;
    INSERT INTO car_text_cells (grid, cell, text, cars)
    SELECT grid, CAST((NEW.latitude + 90) * per_deg AS INTEGER) * 100000
                 + CAST((NEW.longitude + 180) * per_deg AS INTEGER), NEW.search_text, 1
    FROM car_grids WHERE true
    ON CONFLICT (grid, cell, text) DO UPDATE SET cars = cars + 1;
END;
CREATE TRIGGER cars_cells_delete AFTER DELETE ON cars
WHEN OLD.is_active AND OLD.deleted_at IS NULL
BEGIN
    INSERT INTO car_cells (grid, cell, cars)
    SELECT grid, CAST((OLD.latitude + 90) * per_deg AS INTEGER) * 100000
                 + CAST((OLD.longitude + 180) * per_deg AS INTEGER), -1
    FROM car_grids WHERE true
    ON CONFLICT (grid, cell) DO UPDATE SET cars = cars - 1;
    INSERT INTO car_text_cells (grid, cell, text, cars)
    SELECT grid, CAST((OLD.latitude + 90) * per_deg AS INTEGER) * 100000
                 + CAST((OLD.longitude + 180) * per_deg AS INTEGER), OLD.search_text, -1
    FROM car_grids WHERE true
    ON CONFLICT (grid, cell, text) DO UPDATE SET cars = cars - 1;
END;
CREATE TRIGGER cars_cells_update
AFTER UPDATE OF latitude, longitude, is_active, deleted_at, search_text ON cars
BEGIN
    INSERT INTO car_cells (grid, cell, cars)
    SELECT grid, CAST((OLD.latitude + 90) * per_deg AS INTEGER) * 100000
                 + CAST((OLD.longitude + 180) * per_deg AS INTEGER), -1
    FROM car_grids WHERE OLD.is_active AND OLD.deleted_at IS NULL
    ON CONFLICT (grid, cell) DO UPDATE SET cars = cars - 1;
    INSERT INTO car_cells (grid, cell, cars)
    SELECT grid, CAST((NEW.latitude + 90) * per_deg AS INTEGER) * 100000
                 + CAST((NEW.longitude + 180) * per_deg AS INTEGER), 1
    FROM car_grids WHERE NEW.is_active AND NEW.deleted_at IS NULL
    ON CONFLICT (grid, cell) DO UPDATE SET cars = cars + 1;
    INSERT INTO car_text_cells (grid, cell, text, cars)
    SELECT grid, CAST((OLD.latitude + 90) * per_deg AS INTEGER) * 100000
                 + CAST((OLD.longitude + 180) * per_deg AS INTEGER), OLD.search_text, -1
    FROM car_grids WHERE OLD.is_active AND OLD.deleted_at IS NULL
    ON CONFLICT (grid, cell, text) DO UPDATE SET cars = cars - 1;
    INSERT INTO car_text_cells (grid, cell, text, cars)
    SELECT grid, CAST((NEW.latitude + 90) * per_deg AS INTEGER) * 100000
                 + CAST((NEW.longitude + 180) * per_deg AS INTEGER), NEW.search_text, 1
    FROM car_grids WHERE NEW.is_active AND NEW.deleted_at IS NULL
    ON CONFLICT (grid, cell, text) DO UPDATE SET cars = cars + 1;
END;


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
) WITHOUT ROWID;
INSERT INTO car_facets
SELECT is_active, city_key, brand_key, fuel_type, transmission, seats, price_per_day, count(*)
FROM cars WHERE deleted_at IS NULL
GROUP BY is_active, city_key, brand_key, fuel_type, transmission, seats, price_per_day;

CREATE TRIGGER cars_facets_insert AFTER INSERT ON cars WHEN NEW.deleted_at IS NULL
BEGIN
    INSERT INTO car_facets (is_active, city_key, brand_key, fuel_type, transmission, seats, price_per_day, cars)
    VALUES (NEW.is_active, NEW.city_key, NEW.brand_key, NEW.fuel_type, NEW.transmission,
            NEW.seats, NEW.price_per_day, 1)
    ON CONFLICT (is_active, city_key, brand_key, fuel_type, transmission, seats, price_per_day) DO UPDATE SET cars = cars + 1;
END;
CREATE TRIGGER cars_facets_delete AFTER DELETE ON cars WHEN OLD.deleted_at IS NULL
BEGIN
    UPDATE car_facets SET cars = cars - 1
    WHERE is_active = OLD.is_active AND city_key = OLD.city_key AND brand_key = OLD.brand_key
      AND fuel_type = OLD.fuel_type AND transmission = OLD.transmission
      AND seats = OLD.seats AND price_per_day = OLD.price_per_day;
END;
CREATE TRIGGER cars_facets_update AFTER UPDATE OF is_active, city_key, brand_key, fuel_type, transmission, seats, price_per_day, deleted_at ON cars
BEGIN
    UPDATE car_facets SET cars = cars - 1
    WHERE OLD.deleted_at IS NULL
      AND is_active = OLD.is_active AND city_key = OLD.city_key AND brand_key = OLD.brand_key
      AND fuel_type = OLD.fuel_type AND transmission = OLD.transmission
      AND seats = OLD.seats AND price_per_day = OLD.price_per_day;
    INSERT INTO car_facets (is_active, city_key, brand_key, fuel_type, transmission, seats, price_per_day, cars)
    SELECT NEW.is_active, NEW.city_key, NEW.brand_key, NEW.fuel_type, NEW.transmission,
           NEW.seats, NEW.price_per_day, 1
    WHERE NEW.deleted_at IS NULL
    ON CONFLICT (is_active, city_key, brand_key, fuel_type, transmission, seats, price_per_day) DO UPDATE SET cars = cars + 1;
END;
