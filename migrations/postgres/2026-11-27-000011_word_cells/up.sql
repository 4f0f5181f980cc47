-- Each word of a car carries the car's cell in the second grid of car_cells (64 cells per
-- degree), so that a text search reads the word's cars near the circle rather than all of
-- them: the index walks the word's cells row by row of the circle's latitudes.
ALTER TABLE car_words ADD COLUMN geo_cell_1 BIGINT NOT NULL DEFAULT 0;
UPDATE car_words w SET geo_cell_1 = c.geo_cell_1 FROM cars c WHERE c.id = w.car_id;
ALTER TABLE car_words ALTER COLUMN geo_cell_1 DROP DEFAULT;
CREATE INDEX car_words_cell_idx ON car_words (word, geo_cell_1, car_id);
