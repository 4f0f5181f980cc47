-- See the PostgreSQL migration of the same name. SQLite has row triggers only.
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
