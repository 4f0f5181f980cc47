-- What a desk sells beside the car: priced per day or per rental (exactly one), in minor
-- units; a withdrawn extra (active false) is kept for the bookings that have it.
CREATE TABLE extras (
    code             TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    price_per_day    BIGINT,
    price_per_rental BIGINT,
    currency         TEXT NOT NULL,
    max_quantity     INTEGER NOT NULL,
    active           BOOLEAN NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    CHECK ((price_per_day IS NULL) <> (price_per_rental IS NULL))
);
