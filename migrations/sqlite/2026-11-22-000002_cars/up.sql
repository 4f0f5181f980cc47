-- Money in hundredths of the currency's major unit; images and features as JSON arrays.
-- city_key and brand_key hold the lower-cased values the exact, any-case filters compare;
-- search_text holds name, brand, model and features as normalized words for text search.
CREATE TABLE cars (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    brand         TEXT NOT NULL,
    brand_key     TEXT NOT NULL,
    model         TEXT NOT NULL,
    year          INTEGER NOT NULL,
    fuel_type     TEXT NOT NULL CHECK (fuel_type IN ('petrol', 'diesel', 'electric', 'hybrid')),
    transmission  TEXT NOT NULL CHECK (transmission IN ('automatic', 'manual')),
    seats         INTEGER NOT NULL CHECK (seats BETWEEN 1 AND 20),
    price_per_day BIGINT NOT NULL CHECK (price_per_day > 0),
    currency      TEXT NOT NULL,
    images        TEXT NOT NULL,
    features      TEXT NOT NULL,
    latitude      DOUBLE NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude     DOUBLE NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    address       TEXT NOT NULL,
    city          TEXT NOT NULL,
    city_key      TEXT NOT NULL,
    state         TEXT,
    country       TEXT NOT NULL,
    postal_code   TEXT,
    search_text   TEXT NOT NULL,
    is_active     BOOLEAN NOT NULL,
    deleted_at    TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
-- Listing: is_active is compared to a bound parameter, so it leads the index rather than
-- standing in a partial-index predicate.
CREATE INDEX cars_listing_idx ON cars (is_active, deleted_at, created_at DESC, id);
CREATE INDEX cars_city_idx ON cars (city_key) WHERE deleted_at IS NULL;
CREATE INDEX cars_brand_idx ON cars (brand_key) WHERE deleted_at IS NULL;
-- Search walks this index by latitude range. It also holds every column the search filters
-- on and the id, so the query reads the table only for the page it answers (and for the
-- words of a text query).
CREATE INDEX cars_geo_idx ON cars (latitude, longitude, is_active, deleted_at, price_per_day,
                                   seats, fuel_type, transmission, id);
