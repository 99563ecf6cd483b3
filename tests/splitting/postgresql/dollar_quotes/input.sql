CREATE FUNCTION add_one(i integer) RETURNS integer AS $$
BEGIN
  RETURN i + 1; -- ; inside
END;
$$ LANGUAGE plpgsql;
CREATE FUNCTION tagged() RETURNS text AS $body$
  SELECT 'a $$ b; c'::text;
$body$ LANGUAGE sql;
DO $do$
DECLARE
  x integer := 1;
BEGIN
  IF x = 1 THEN
    RAISE NOTICE 'one; %', x;
  END IF;
END
$do$;
SELECT add_one(1), tagged();
