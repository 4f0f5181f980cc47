-- Work other modules must hear about, written in the same transaction as the change that
-- causes it and drained by background workers (at least once, with backoff).
-- A worker owns a row while locked_until is in the future.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    topic           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until    TIMESTAMP,
    last_error      TEXT,
    created_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP
);
CREATE INDEX outbox_due_idx ON outbox (topic, status, next_attempt_at);
