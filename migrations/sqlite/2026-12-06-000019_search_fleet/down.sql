DROP TRIGGER cars_change_seq_insert;
DROP TRIGGER cars_change_seq_update;
DROP INDEX cars_change_seq_idx;
DELETE FROM data_versions WHERE name = 'car_rows';
ALTER TABLE cars DROP COLUMN change_seq;
