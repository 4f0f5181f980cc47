-- Listing pages walk this index in order: newest first, undeleted cars only, with
-- is_active in it so the active-only listing reads no table row to skip the others.
-- The index it replaces led with is_active and deleted_at, which PostgreSQL could not use
-- for the order (IS NULL is no equality), so a page deep into the fleet sorted the table.
CREATE INDEX cars_newest_idx ON cars (created_at DESC, id, is_active) WHERE deleted_at IS NULL;
DROP INDEX cars_listing_idx;
