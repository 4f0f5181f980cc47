-- email is null for an identity-provider user without a verified address and for a user
-- who left; password_hash is null for a user who signs in only through the provider.
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
-- Users that existed before verification count as verified (the column's default).
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE users ADD COLUMN tokens_valid_after TIMESTAMP;
ALTER TABLE users ADD COLUMN deleted_at TIMESTAMP;
ALTER TABLE users ADD COLUMN oidc_issuer TEXT;
ALTER TABLE users ADD COLUMN oidc_subject TEXT;
ALTER TABLE users ADD CONSTRAINT users_oidc_key UNIQUE (oidc_issuer, oidc_subject);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL,
    user_agent   TEXT,
    ip           TEXT,
    revoked_at   TIMESTAMP
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at);
INSERT INTO sessions (id, user_id, created_at, last_used_at, revoked_at)
    SELECT session_id, MIN(user_id), MIN(created_at), MAX(created_at),
           CASE WHEN COUNT(*) = COUNT(revoked_at) THEN MAX(revoked_at) END
    FROM refresh_tokens GROUP BY session_id;

-- Single-use tokens sent by email (verify_email, password_reset), stored as a keyed hash.
CREATE TABLE account_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('verify_email', 'password_reset')),
    email      TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    CONSTRAINT account_tokens_hash_key UNIQUE (token_hash)
);
CREATE INDEX account_tokens_user_idx ON account_tokens (user_id, kind, created_at);
