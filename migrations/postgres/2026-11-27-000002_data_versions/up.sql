-- A counter per table whose rows processes cache, moved on by every write to that table
-- (whoever makes it: the server, a command, psql). Each process reads it a few times a
-- second and empties its cache when it moved.
CREATE TABLE data_versions (
    name    TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO data_versions (name, version) VALUES ('cars', 0);

CREATE FUNCTION bump_cars_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_versions SET version = version + 1 WHERE name = 'cars';
    RETURN NULL;
END
$$;

CREATE TRIGGER cars_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cars
FOR EACH STATEMENT EXECUTE FUNCTION bump_cars_version();
