-- Text search on indexes; see the PostgreSQL migration of the same name.
CREATE TABLE car_words (
    word   TEXT NOT NULL,
    car_id TEXT NOT NULL REFERENCES cars (id) ON DELETE CASCADE,
    PRIMARY KEY (word, car_id)
) WITHOUT ROWID;
CREATE INDEX car_words_car_idx ON car_words (car_id);

CREATE TABLE word_variants (
    variant TEXT NOT NULL,
    word    TEXT NOT NULL,
    PRIMARY KEY (variant, word)
) WITHOUT ROWID;

WITH RECURSIVE split (car_id, word, rest) AS (
    SELECT id, '', search_text || ' ' FROM cars
    UNION ALL
    SELECT car_id, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1)
    FROM split WHERE rest <> ''
)
INSERT OR IGNORE INTO car_words (word, car_id)
SELECT word, car_id FROM split WHERE word <> '';

WITH RECURSIVE positions (word, i) AS (
    SELECT word, 1 FROM (SELECT DISTINCT word FROM car_words)
    UNION ALL
    SELECT word, i + 1 FROM positions WHERE i < length(word)
)
INSERT OR IGNORE INTO word_variants (variant, word)
SELECT word, word FROM car_words
UNION
SELECT substr(word, 1, i - 1) || substr(word, i + 1), word FROM positions;
