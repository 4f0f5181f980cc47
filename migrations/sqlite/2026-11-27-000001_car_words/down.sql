DROP TABLE word_variants;
DROP TABLE car_words;
