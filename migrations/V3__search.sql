-- Digit-substring search with a GIN index of 4-digit grams instead of pg_trgm.
--
-- number_digits holds only digits and '|': pg_trgm sees at most 1,000 distinct trigrams, so
-- each trigram's posting list covers a few percent of a tenant's calls, and a 6-digit search
-- intersects four such lists and rechecks thousands of rows. 4-digit grams have 10,000
-- values: a search of 4 digits or more intersects lists ten times shorter, and LIKE keeps only
-- the true substrings. Shorter searches match so many calls that reading newest first and
-- filtering finds a page sooner than any index (the service sends no gram condition then).
--
-- Grams are plain integers (0..9999), so the index is a built-in integer-array GIN index.

-- Every 4-digit gram of each '|'-separated number (a gram never spans two numbers). GIN drops
-- duplicates itself. plpgsql, so the planner never inlines it: the index expression and the
-- query's must stay the same call.
CREATE FUNCTION digit_grams(digits text) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    grams integer[] := '{}';
    number text;
BEGIN
    FOREACH number IN ARRAY string_to_array(digits, '|') LOOP
        FOR start IN 1 .. length(number) - 3 LOOP
            grams := grams || substr(number, start, 4)::integer;
        END LOOP;
    END LOOP;
    RETURN grams;
END
$$;

-- fastupdate off: with the default pending list, every search also scans the unsorted list of
-- recent inserts (up to 4 MB); 10,000 creates made 6-digit searches 4x slower (measured, see
-- BENCHMARKS.md). Inserts pay for their ~20 grams at once instead.
CREATE INDEX calls_number_grams_idx ON calls USING gin (digit_grams(number_digits))
    WITH (fastupdate = off) WHERE delete_time IS NULL;

-- Every query on calls reads one small, indexed page. A generic plan (prepared statements use
-- one after five executions) cannot see how selective a search is and picked a parallel bitmap
-- scan, whose worker start-up made a 0.4 ms search take 20 ms.
ALTER TABLE calls SET (parallel_workers = 0);

-- The trigram index answered the same searches, slower, and cost every write.
DROP INDEX calls_number_digits_idx;
