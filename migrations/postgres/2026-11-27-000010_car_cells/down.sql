DROP TRIGGER cars_cells_truncate ON cars;
DROP TRIGGER cars_cells_delete ON cars;
DROP TRIGGER cars_cells_update ON cars;
DROP TRIGGER cars_cells_insert ON cars;
DROP FUNCTION count_car_cells();
DROP TABLE car_cells;
DROP TABLE car_grids;
DROP INDEX cars_cell_idx;
ALTER TABLE cars DROP COLUMN geo_cell;
