PRAGMA foreign_keys = OFF;
BEGIN;
DROP TABLE account_tokens;
DROP TABLE sessions;
-- Users without an address or a password get placeholders nobody can sign in with.
CREATE TABLE users_old (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    name          TEXT,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('customer', 'admin')),
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email)
);
INSERT INTO users_old (id, email, name, password_hash, role, created_at, updated_at)
    SELECT id, COALESCE(email, 'user-' || id || '.invalid'), name, COALESCE(password_hash, ''),
           role, created_at, updated_at
    FROM users;
DROP TABLE users;
ALTER TABLE users_old RENAME TO users;
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
