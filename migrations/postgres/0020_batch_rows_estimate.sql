-- The rows of a batched write, for the planner: about ten, not a hundred.
--
-- Every batched statement reads its rows from one JSON parameter (see `Sql::json_rows`).
-- `json_array_elements` is estimated at 100 rows whatever it is given, so `UPDATE t ... FROM
-- <rows> WHERE t.id = v.id` was planned as a hash join over a sequential scan of the whole
-- table until the table held tens of thousands of rows: the one door's inbound update read
-- every row of `inbound` for batches of one or two (2.4 ms a call in the bench, 3x any other
-- statement). This wrapper says ten rows, so the same statements probe the primary key (or
-- the provider id's index) once per row. It is STRICT so that PostgreSQL does not inline it
-- (an inlined SQL function takes its estimate from `json_array_elements` again).
CREATE FUNCTION chatwire_rows(batch json) RETURNS TABLE (value json, ord bigint)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE ROWS 10
    AS $$ SELECT value, ord FROM json_array_elements(batch) WITH ORDINALITY AS r(value, ord) $$;
