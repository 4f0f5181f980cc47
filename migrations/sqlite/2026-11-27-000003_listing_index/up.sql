-- See the PostgreSQL migration of the same name.
CREATE INDEX cars_newest_idx ON cars (created_at DESC, id, is_active) WHERE deleted_at IS NULL;
DROP INDEX cars_listing_idx;
DELETE FROM sqlite_stat1 WHERE tbl = 'cars' AND idx = 'cars_listing_idx';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('cars', 'cars_newest_idx', '100000 1 1 1');
