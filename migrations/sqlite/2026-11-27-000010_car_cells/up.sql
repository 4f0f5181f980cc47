-- See the PostgreSQL migration of the same name. SQLite has row triggers only; CAST to
-- INTEGER truncates, which is the floor of these non-negative numbers.
ALTER TABLE cars ADD COLUMN geo_cell_0 INTEGER GENERATED ALWAYS AS
    (CAST((latitude + 90) * 256 AS INTEGER) * 100000 + CAST((longitude + 180) * 256 AS INTEGER))
    VIRTUAL;
ALTER TABLE cars ADD COLUMN geo_cell_1 INTEGER GENERATED ALWAYS AS
    (CAST((latitude + 90) * 64 AS INTEGER) * 100000 + CAST((longitude + 180) * 64 AS INTEGER))
    VIRTUAL;
CREATE INDEX cars_cell_0_idx ON cars (geo_cell_0, latitude, longitude)
    WHERE is_active AND deleted_at IS NULL;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude)
    WHERE is_active AND deleted_at IS NULL;

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
