DROP INDEX car_words_cell_idx;
ALTER TABLE car_words DROP COLUMN geo_cell_1;
