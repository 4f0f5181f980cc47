-- Text search on indexes. car_words holds each car's words (its search_text, split);
-- word_variants holds, for every word any car has had, the word itself and the word with
-- one letter taken out. Two words are at most one edit apart only if their variants meet,
-- so a query word's candidates are an index lookup per variant, checked exactly after.
CREATE TABLE car_words (
    word   TEXT NOT NULL,
    car_id TEXT NOT NULL REFERENCES cars (id) ON DELETE CASCADE,
    PRIMARY KEY (word, car_id)
);
CREATE INDEX car_words_car_idx ON car_words (car_id);

CREATE TABLE word_variants (
    variant TEXT NOT NULL,
    word    TEXT NOT NULL,
    PRIMARY KEY (variant, word)
);

INSERT INTO car_words (word, car_id)
SELECT DISTINCT w, id FROM cars, unnest(string_to_array(search_text, ' ')) AS w
WHERE w <> '';

INSERT INTO word_variants (variant, word)
SELECT DISTINCT word, word FROM car_words
UNION
SELECT overlay(word PLACING '' FROM i FOR 1), word
FROM (SELECT DISTINCT word FROM car_words) AS v, generate_series(1, length(word)) AS i;

ANALYZE car_words;
ANALYZE word_variants;

DROP FUNCTION text_match(text, text);
DROP FUNCTION within_one_edit(text, text);
