DROP TRIGGER cars_cells_update;
DROP TRIGGER cars_cells_delete;
DROP TRIGGER cars_cells_insert;
DROP TABLE car_cells;
DROP TABLE car_grids;
DROP INDEX cars_cell_1_idx;
DROP INDEX cars_cell_0_idx;
ALTER TABLE cars DROP COLUMN geo_cell_1;
ALTER TABLE cars DROP COLUMN geo_cell_0;
