-- Photos and documents: an upload is offered (pending), then completed (ready) once its
-- bytes are checked and its derivatives written; a car keeps its photos as JSON beside its
-- directly given image URLs, so every place that shows a car shows them without a join.
ALTER TABLE cars ADD COLUMN photos TEXT NOT NULL DEFAULT '[]';

CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    purpose      TEXT NOT NULL CHECK (purpose IN ('car_photo', 'damage_photo', 'licence')),
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL CHECK (size > 0),
    car_id       TEXT,
    booking_id   TEXT,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'ready')),
    width        INTEGER,
    height       INTEGER,
    sha256       TEXT,
    -- the WebP versions written at completion: [{variant, key, width, height, size}]
    derivatives  TEXT,
    created_at   TIMESTAMP NOT NULL,
    completed_at TIMESTAMP
);
CREATE INDEX uploads_pending_idx ON uploads (created_at) WHERE status = 'pending';

-- A customer's driving licence: the object of a completed licence upload, checked by the desk.
CREATE TABLE licences (
    user_id    TEXT PRIMARY KEY,
    upload_id  TEXT NOT NULL,
    object_key TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'verified', 'rejected')),
    note       TEXT,
    updated_at TIMESTAMP NOT NULL
);
