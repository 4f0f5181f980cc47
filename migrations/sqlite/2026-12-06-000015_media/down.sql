DROP TABLE licences;
DROP TABLE uploads;
ALTER TABLE cars DROP COLUMN photos;
