-- The per-row text match this migration replaced.
-- At most one edit apart: insertion, deletion, substitution or two neighbours swapped.
CREATE FUNCTION within_one_edit(a text, b text)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    la int := length(a);
    lb int := length(b);
    i int := 1;
BEGIN
    IF a = b THEN
        RETURN true;
    END IF;
    IF abs(la - lb) > 1 THEN
        RETURN false;
    END IF;
    WHILE i <= la AND i <= lb AND substr(a, i, 1) = substr(b, i, 1) LOOP
        i := i + 1;
    END LOOP;
    IF la = lb THEN
        RETURN substr(a, i + 1) = substr(b, i + 1)
            OR (i < la AND substr(a, i, 1) = substr(b, i + 1, 1)
                AND substr(a, i + 1, 1) = substr(b, i, 1)
                AND substr(a, i + 2) = substr(b, i + 2));
    ELSIF la > lb THEN
        RETURN substr(a, i + 1) = substr(b, i);
    END IF;
    RETURN substr(a, i) = substr(b, i + 1);
END
$$;

-- Every word of query (space separated) matches a word of haystack: exactly, or within one
-- edit for words of three letters or more. Words whose lengths differ by more than one never
-- reach within_one_edit; the high COST makes the planner test every other condition first.
CREATE FUNCTION text_match(haystack text, query text)
RETURNS boolean LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 10000 AS $$
    SELECT coalesce(bool_and(EXISTS (
        SELECT 1 FROM unnest(string_to_array(haystack, ' ')) AS t(token)
        WHERE t.token = w.word
           OR (length(w.word) >= 3
               AND abs(length(w.word) - length(t.token)) <= 1
               AND within_one_edit(w.word, t.token))
    )), true)
    FROM unnest(string_to_array(query, ' ')) AS w(word)
    WHERE w.word <> ''
$$;

DROP TABLE word_variants;
DROP TABLE car_words;
