DROP FUNCTION text_match(text, text);
DROP FUNCTION within_one_edit(text, text);
DROP FUNCTION geo_distance_km(float8, float8, float8, float8);
