-- See the PostgreSQL migration of the same name. SQLite has row triggers only.
CREATE TABLE car_counts (
    active BOOLEAN PRIMARY KEY,
    cars   BIGINT NOT NULL
);
INSERT INTO car_counts (active, cars)
SELECT v.active, (SELECT count(*) FROM cars WHERE deleted_at IS NULL AND is_active = v.active)
FROM (SELECT 1 AS active UNION ALL SELECT 0) AS v;

CREATE TRIGGER cars_counted_insert AFTER INSERT ON cars WHEN NEW.deleted_at IS NULL
BEGIN UPDATE car_counts SET cars = cars + 1 WHERE active = NEW.is_active; END;
CREATE TRIGGER cars_counted_delete AFTER DELETE ON cars WHEN OLD.deleted_at IS NULL
BEGIN UPDATE car_counts SET cars = cars - 1 WHERE active = OLD.is_active; END;
CREATE TRIGGER cars_counted_update AFTER UPDATE OF is_active, deleted_at ON cars
BEGIN
    UPDATE car_counts SET cars = cars - 1 WHERE OLD.deleted_at IS NULL AND active = OLD.is_active;
    UPDATE car_counts SET cars = cars + 1 WHERE NEW.deleted_at IS NULL AND active = NEW.is_active;
END;
