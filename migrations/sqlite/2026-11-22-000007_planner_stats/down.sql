DELETE FROM sqlite_stat1 WHERE tbl = 'cars';
