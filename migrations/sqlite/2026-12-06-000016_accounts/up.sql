PRAGMA foreign_keys = OFF;
BEGIN;
-- email is null for an identity-provider user without a verified address and for a user
-- who left; password_hash is null for a user who signs in only through the provider.
-- Users that existed before verification count as verified (the column's default).
CREATE TABLE users_new (
    id                 TEXT PRIMARY KEY,
    email              TEXT,
    name               TEXT,
    password_hash      TEXT,
    role               TEXT NOT NULL CHECK (role IN ('customer', 'admin')),
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    email_verified     BOOLEAN NOT NULL DEFAULT 1,
    tokens_valid_after TIMESTAMP,
    deleted_at         TIMESTAMP,
    oidc_issuer        TEXT,
    oidc_subject       TEXT,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_oidc_key UNIQUE (oidc_issuer, oidc_subject)
);
INSERT INTO users_new (id, email, name, password_hash, role, created_at, updated_at)
    SELECT id, email, name, password_hash, role, created_at, updated_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

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
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
