DROP TABLE account_tokens;
DROP TABLE sessions;
ALTER TABLE users DROP CONSTRAINT users_oidc_key;
ALTER TABLE users DROP COLUMN oidc_subject;
ALTER TABLE users DROP COLUMN oidc_issuer;
ALTER TABLE users DROP COLUMN deleted_at;
ALTER TABLE users DROP COLUMN tokens_valid_after;
ALTER TABLE users DROP COLUMN email_verified;
-- Users without an address or a password get placeholders nobody can sign in with.
UPDATE users SET email = 'user-' || id || '.invalid' WHERE email IS NULL;
UPDATE users SET password_hash = '' WHERE password_hash IS NULL;
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
ALTER TABLE users ALTER COLUMN password_hash SET NOT NULL;
