CREATE INDEX cars_listing_idx ON cars (is_active, deleted_at, created_at DESC, id);
DROP INDEX cars_newest_idx;
DELETE FROM sqlite_stat1 WHERE tbl = 'cars' AND idx = 'cars_newest_idx';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('cars', 'cars_listing_idx', '100000 50000 50000 1 1');
