-- See the PostgreSQL migration of the same name.
CREATE TABLE text_words (
    word TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (word, text)
) WITHOUT ROWID;
WITH RECURSIVE split (text, word, rest) AS (
    SELECT search_text, '', search_text || ' ' FROM (SELECT DISTINCT search_text FROM cars)
    UNION ALL
    SELECT text, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1)
    FROM split WHERE rest <> ''
)
INSERT OR IGNORE INTO text_words (word, text)
SELECT word, text FROM split WHERE word <> '';

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

DROP INDEX cars_cell_0_idx;
DROP INDEX cars_cell_1_idx;
CREATE INDEX cars_cell_0_idx ON cars (geo_cell_0, latitude, longitude, search_text)
    WHERE is_active AND deleted_at IS NULL;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude, search_text)
    WHERE is_active AND deleted_at IS NULL;

-- The search's own index leads with the car's cell and carries the text (see the
-- PostgreSQL migration); the planner is told about ten cars share a cell.
DROP INDEX cars_geo_idx;
CREATE INDEX cars_geo_idx ON cars (geo_cell_1, latitude, longitude, is_active, deleted_at,
                                   price_per_day, seats, fuel_type, transmission, id, search_text);
DELETE FROM sqlite_stat1 WHERE tbl = 'cars' AND idx = 'cars_geo_idx';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('cars', 'cars_geo_idx', '100000 10 1 1 1 1 1 1 1 1 1 1');

DROP TRIGGER cars_cells_insert;
DROP TRIGGER cars_cells_delete;
DROP TRIGGER cars_cells_update;
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

DROP TABLE car_words;
