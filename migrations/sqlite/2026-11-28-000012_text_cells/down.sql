CREATE TABLE car_words (
    word       TEXT NOT NULL,
    car_id     TEXT NOT NULL REFERENCES cars (id) ON DELETE CASCADE,
    geo_cell_1 BIGINT NOT NULL,
    PRIMARY KEY (word, car_id)
) WITHOUT ROWID;
WITH RECURSIVE split (car_id, cell, word, rest) AS (
    SELECT id, geo_cell_1, '', search_text || ' ' FROM cars
    UNION ALL
    SELECT car_id, cell, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1)
    FROM split WHERE rest <> ''
)
INSERT OR IGNORE INTO car_words (word, car_id, geo_cell_1)
SELECT word, car_id, cell FROM split WHERE word <> '';
CREATE INDEX car_words_car_idx ON car_words (car_id);
CREATE INDEX car_words_cell_idx ON car_words (word, geo_cell_1, car_id);

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
END;
CREATE TRIGGER cars_cells_delete AFTER DELETE ON cars
WHEN OLD.is_active AND OLD.deleted_at IS NULL
BEGIN
    INSERT INTO car_cells (grid, cell, cars)
    SELECT grid, CAST((OLD.latitude + 90) * per_deg AS INTEGER) * 100000
                 + CAST((OLD.longitude + 180) * per_deg AS INTEGER), -1
    FROM car_grids WHERE true
    ON CONFLICT (grid, cell) DO UPDATE SET cars = cars - 1;
END;
CREATE TRIGGER cars_cells_update AFTER UPDATE OF latitude, longitude, is_active, deleted_at ON cars
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
END;

DROP INDEX cars_cell_0_idx;
DROP INDEX cars_cell_1_idx;
CREATE INDEX cars_cell_0_idx ON cars (geo_cell_0, latitude, longitude)
    WHERE is_active AND deleted_at IS NULL;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude)
    WHERE is_active AND deleted_at IS NULL;

DROP INDEX cars_geo_idx;
CREATE INDEX cars_geo_idx ON cars (latitude, longitude, is_active, deleted_at, price_per_day,
                                   seats, fuel_type, transmission, id);
DELETE FROM sqlite_stat1 WHERE tbl = 'cars' AND idx = 'cars_geo_idx';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('cars', 'cars_geo_idx', '100000 2 1 1 1 1 1 1 1 1');

DROP TABLE car_text_cells;
DROP TABLE text_words;
