-- How many undeleted cars there are, active and inactive, kept by the database with every
-- write to cars (whoever makes it), so that the total of an unfiltered listing and the
-- search index's check read two rows instead of counting the fleet. Statement triggers
-- with transition tables: a bulk insert adds its rows once.
CREATE TABLE car_counts (
    active BOOLEAN PRIMARY KEY,
    cars   BIGINT NOT NULL
);
INSERT INTO car_counts (active, cars)
SELECT v.active, (SELECT count(*) FROM cars WHERE deleted_at IS NULL AND is_active = v.active)
FROM (VALUES (true), (false)) AS v(active);

CREATE FUNCTION count_cars() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Both rows, in one order, before either changes: writers toggling cars opposite ways
    -- would otherwise each hold the row the other waits for.
    PERFORM 1 FROM car_counts ORDER BY active FOR UPDATE;
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE car_counts SET cars = 0;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE car_counts c SET cars = c.cars + n.cars
        FROM (SELECT is_active, count(*) AS cars FROM new_rows
              WHERE deleted_at IS NULL GROUP BY is_active) n
        WHERE c.active = n.is_active;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE car_counts c SET cars = c.cars - o.cars
        FROM (SELECT is_active, count(*) AS cars FROM old_rows
              WHERE deleted_at IS NULL GROUP BY is_active) o
        WHERE c.active = o.is_active;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER cars_counted_insert AFTER INSERT ON cars
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_cars();
CREATE TRIGGER cars_counted_update AFTER UPDATE ON cars
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION count_cars();
CREATE TRIGGER cars_counted_delete AFTER DELETE ON cars
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_cars();
CREATE TRIGGER cars_counted_truncate AFTER TRUNCATE ON cars
FOR EACH STATEMENT EXECUTE FUNCTION count_cars();
