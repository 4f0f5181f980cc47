-- See the PostgreSQL migration of the same name.
ALTER TABLE car_words ADD COLUMN geo_cell_1 BIGINT NOT NULL DEFAULT 0;
UPDATE car_words SET geo_cell_1 = (SELECT c.geo_cell_1 FROM cars c WHERE c.id = car_words.car_id);
CREATE INDEX car_words_cell_idx ON car_words (word, geo_cell_1, car_id);
