CREATE INDEX cars_listing_idx ON cars (is_active, deleted_at, created_at DESC, id);
DROP INDEX cars_newest_idx;
