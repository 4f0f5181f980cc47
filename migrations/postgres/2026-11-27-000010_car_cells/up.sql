-- How many searchable cars (active, not deleted) lie in each cell of four grids, kept by
-- the database with every write to cars, so that counting the cars of a circle adds the
-- counts of the cells wholly inside it (src/search/cells.rs says how). Grid g has
-- 256 / 4^g cells per degree; a cell is numbered row * 100000 + column, from 90° S and
-- 180° W. geo_cell_0 and geo_cell_1 are a car's cells in the two finest grids, for the
-- cells on a circle's edge, whose cars are measured.
ALTER TABLE cars
    ADD COLUMN geo_cell_0 BIGINT GENERATED ALWAYS AS
        (floor((latitude + 90) * 256)::bigint * 100000 + floor((longitude + 180) * 256)::bigint)
        STORED,
    ADD COLUMN geo_cell_1 BIGINT GENERATED ALWAYS AS
        (floor((latitude + 90) * 64)::bigint * 100000 + floor((longitude + 180) * 64)::bigint)
        STORED;
CREATE INDEX cars_cell_0_idx ON cars (geo_cell_0, latitude, longitude)
    WHERE is_active AND deleted_at IS NULL;
CREATE INDEX cars_cell_1_idx ON cars (geo_cell_1, latitude, longitude)
    WHERE is_active AND deleted_at IS NULL;

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

CREATE TRIGGER cars_cells_insert AFTER INSERT ON cars
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_car_cells();
CREATE TRIGGER cars_cells_update AFTER UPDATE ON cars
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION count_car_cells();
CREATE TRIGGER cars_cells_delete AFTER DELETE ON cars
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_car_cells();
CREATE TRIGGER cars_cells_truncate AFTER TRUNCATE ON cars
FOR EACH STATEMENT EXECUTE FUNCTION count_car_cells();
