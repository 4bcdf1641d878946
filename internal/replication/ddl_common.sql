-- What both sides of schema change replication share (run before
-- ddl_source.sql on the source, ddl_target.sql on the target).

CREATE SCHEMA IF NOT EXISTS replicator_ddl;
REVOKE ALL ON SCHEMA replicator_ddl FROM PUBLIC;

-- fingerprint sums up a relation's rows, in any order, for comparing the
-- two sides (a materialized view refreshed while the source was written).
-- Settings that change how values print are pinned, so both sides agree.
CREATE OR REPLACE FUNCTION replicator_ddl.fingerprint(r regclass) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET "DateStyle" = 'ISO, YMD' SET "IntervalStyle" = 'postgres'
SET "TimeZone" = 'UTC' SET extra_float_digits = 1 SET bytea_output = 'hex' AS $f$
DECLARE
    out text;
BEGIN
    IF NOT (SELECT c.relispopulated FROM pg_class c WHERE c.oid = r) THEN
        RETURN 'not populated';
    END IF;
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) || %L || coalesce(pg_catalog.sum(pg_catalog.hashtext(x::text)::int8), 0) FROM %s x', ' rows, sum ', r) INTO out;
    RETURN out;
END
$f$;
