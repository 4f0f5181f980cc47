-- How many undeleted cars share each combination of the values GET /cars filters on, kept
-- by the database with every write to cars. A filtered listing's total is then a sum over
-- the combinations that pass the filters: its cost follows how many distinct combinations
-- the fleet has, not how many cars.
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

-- One statement per write, its rows changed in key order, so that two writers lock the
-- combinations they share in the same order. A combination whose count falls to zero stays
-- (it adds nothing to a sum).
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
