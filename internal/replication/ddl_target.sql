-- The target's side of replicated schema changes: the queue, as published
-- (the subscription fills it), and a trigger that runs each row's
-- statements inside the apply worker's transaction, before the changes
-- that follow them. ENABLE REPLICA: it fires for the subscription's rows
-- only, never for a local insert. Every function pins search_path =
-- pg_catalog, pg_temp; nobody but the sync role may run them.

COMMENT ON SCHEMA replicator_ddl IS 'replicator: schema changes replicated from the source (dropped by replicator sync --stop)';

CREATE TABLE IF NOT EXISTS replicator_ddl.queue (
    id bigint PRIMARY KEY,
    captured_at timestamptz NOT NULL,
    role name NOT NULL,
    search_path text NOT NULL,
    command_tag text NOT NULL,
    statements text[] NOT NULL,
    objects text[] NOT NULL,
    new_tables text[] NOT NULL,
    unreplicated text,
    note text,
    source_key text NOT NULL UNIQUE,
    applied_at timestamptz,
    error text,
    expect jsonb
);
ALTER TABLE replicator_ddl.queue ADD COLUMN IF NOT EXISTS expect jsonb;  -- over 0.5's

-- The per-author functions 0.5 made: their bodies resolved operators through
-- the author's search_path. New ones are made on first use.
DO $d$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
              WHERE n.nspname OPERATOR(pg_catalog.=) 'replicator_ddl' AND p.proname OPERATOR(pg_catalog.~~) 'as\_%' AND p.pronargs OPERATOR(pg_catalog.=) 3 LOOP
        EXECUTE pg_catalog.format('DROP FUNCTION %s', f);
    END LOOP;
END
$d$;

-- run_as is the function that runs a row's statements for one role: SECURITY
-- DEFINER and owned by that role. Inside it the statements have exactly the
-- role's rights, and PostgreSQL refuses SET ROLE and SET SESSION
-- AUTHORIZATION there. A plain SET ROLE would not do: the apply worker's
-- session user is the subscription's owner, so a statement could SET ROLE
-- back to it. One function per role, made on first use; its name is the
-- role's md5 (role names may be as long as function names). Its body runs
-- under the author's search_path once it is set, so it holds no operator
-- and no unqualified name: the statements come ready from apply().
CREATE OR REPLACE FUNCTION replicator_ddl.run_as(r name) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    fn text := pg_catalog.format('replicator_ddl.%I', 'as_' || pg_catalog.md5(r));
BEGIN
    IF pg_catalog.to_regprocedure(fn || '(text[],text)') IS NULL THEN
        EXECUTE pg_catalog.format($c$CREATE FUNCTION %s(stmts text[], path text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $b$
DECLARE
    s text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', path, true);
    FOREACH s IN ARRAY stmts LOOP
        EXECUTE s;
    END LOOP;
END
$b$$c$, fn);
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s(text[], text) FROM PUBLIC', fn);
        EXECUTE pg_catalog.format('ALTER FUNCTION %s(text[], text) OWNER TO %I', fn, r);
    END IF;
    RETURN fn;
END
$f$;

-- replayable rewrites what cannot run inside the apply worker's
-- transaction into what can: CONCURRENTLY index builds and drops, and a
-- partition detached CONCURRENTLY (or FINALIZEd), become their plain forms.
CREATE OR REPLACE FUNCTION replicator_ddl.replayable(s text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $f$
SELECT pg_catalog.regexp_replace(
         pg_catalog.regexp_replace(s, '^((?:create\s+(?:unique\s+)?index|drop\s+index|reindex\s+[[:alpha:]]+|refresh\s+materialized\s+view))\s+concurrently\M', '\1', 'i'),
         '(\mdetach\s+partition\s+(?:"(?:[^"]|"")*"|[^\s"().,;]+)(?:\s*\.\s*(?:"(?:[^"]|"")*"|[^\s"().,;]+))*)\s+(?:concurrently|finalize)\M', '\1', 'i')
$f$;

-- elevated lists the code that the apply worker of a target before
-- PostgreSQL 16 runs as the subscription's owner (a superuser) while it
-- applies rows: triggers enabled ALWAYS or REPLICA, and functions of roles
-- that are not superusers called from check constraints, index expressions
-- and predicates, and generated columns (each with a hash of its
-- definition, so that replacing the function shows). From 16 the apply
-- worker runs them as the table's owner.
CREATE OR REPLACE FUNCTION replicator_ddl.elevated() RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $f$
WITH uses(what, expr, always) AS (
    SELECT pg_catalog.format('trigger %I on %s', t.tgname, t.tgrelid::regclass), ':funcid ' || t.tgfoid || ' ', true
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE t.tgenabled IN ('A', 'R') AND NOT t.tgisinternal AND n.nspname <> 'replicator_ddl'
    UNION ALL
    SELECT pg_catalog.format('check constraint %I on %s', k.conname, CASE WHEN k.conrelid <> 0 THEN k.conrelid::regclass::text ELSE k.contypid::regtype::text END),
           k.conbin::text, false
      FROM pg_constraint k WHERE k.contype = 'c'
    UNION ALL
    SELECT pg_catalog.format('index %s', i.indexrelid::regclass), coalesce(i.indexprs::text, '') || coalesce(i.indpred::text, ''), false
      FROM pg_index i WHERE i.indexprs IS NOT NULL OR i.indpred IS NOT NULL
    UNION ALL
    SELECT pg_catalog.format('generated column %I of %s', a.attname, a.attrelid::regclass), d.adbin::text, false
      FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE a.attgenerated <> ''
)
SELECT coalesce(pg_catalog.array_agg(DISTINCT pg_catalog.format('%s calls %s', u.what, p.oid::regprocedure)
                                     || ' #' || pg_catalog.md5(pg_catalog.concat_ws('|', p.prosrc, p.probin, p.proconfig::text, p.prosecdef, p.proowner, p.provolatile))), '{}')
  FROM uses u
 CROSS JOIN LATERAL pg_catalog.regexp_matches(u.expr, ':(?:funcid|opfuncid) (\d+) ', 'g') m
  JOIN pg_proc p ON p.oid = m[1]::oid
  JOIN pg_roles o ON o.oid = p.proowner
 WHERE p.oid >= 16384
   AND (u.always OR NOT o.rolsuper
        AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e'))
$f$;

-- compare compares what the source expected after a statement with the
-- target: a materialized view's rows, or the value a new column's fast
-- default gave the existing rows. It returns what differs, with the fix.
CREATE OR REPLACE FUNCTION replicator_ddl.compare(e jsonb) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    r regclass := pg_catalog.to_regclass(e->>'relation');
    got text;
BEGIN
    IF r IS NULL THEN
        RETURN NULL;
    END IF;
    IF e->>'check' = 'fingerprint' THEN
        got := replicator_ddl.fingerprint(r);
        IF got IS DISTINCT FROM e->>'value' THEN
            RETURN pg_catalog.format('materialized view %s differs from the source''s (source %s, target %s): rows written on the source while it was filled are on one side only; fix: REFRESH MATERIALIZED VIEW %s on the source while nothing writes to its tables (the refresh replicates), or on the target after cut-over',
                                     r, e->>'value', got, r);
        END IF;
    ELSIF e->>'check' = 'default' THEN
        SELECT a.attmissingval::text INTO got FROM pg_attribute a WHERE a.attrelid = r AND a.attname = e->>'column' AND a.atthasmissing;
        IF got IS DISTINCT FROM e->>'value' THEN
            RETURN pg_catalog.format('column %I of %s was added with default %s, which gave the existing rows %s on the source and %s on the target; fix: on the target, UPDATE %s SET %I = (%L::text[])[1]::%s WHERE %I = (%L::text[])[1]::%s',
                                     e->>'column', r, e->>'default', e->>'value', coalesce(got, 'nothing'), r, e->>'column', e->>'value',
                                     (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = r AND a.attname = e->>'column'),
                                     e->>'column', got,
                                     (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = r AND a.attname = e->>'column'));
        END IF;
    END IF;
    RETURN NULL;
END
$f$;

-- apply runs a row's statements as the role that ran them on the source,
-- with its search_path (never as the subscription's owner: a row can only do
-- what that role may do). A failure is kept in the row, for replicator
-- status, and the changes go on.
CREATE OR REPLACE FUNCTION replicator_ddl.apply() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    stmts text[] := '{}';
    s text;
    guard boolean;
    before text[];
    gained text;
    e jsonb;
    differs text;
BEGIN
    NEW.applied_at := pg_catalog.now();
    IF pg_catalog.cardinality(NEW.statements) = 0 THEN
        RETURN NEW;
    END IF;
    FOREACH s IN ARRAY NEW.statements LOOP
        stmts := stmts || replicator_ddl.replayable(s);
    END LOOP;
    -- A table CREATE TABLE AS filled gets its rows with the subscription's refresh.
    FOREACH s IN ARRAY NEW.new_tables LOOP
        stmts := stmts || pg_catalog.format('TRUNCATE %s', s);
    END LOOP;
    guard := pg_catalog.current_setting('server_version_num')::int < 160000
             AND NOT coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = NEW.role), false);
    BEGIN
        IF guard THEN
            before := replicator_ddl.elevated();
        END IF;
        EXECUTE pg_catalog.format('SELECT %s($1, $2)', replicator_ddl.run_as(NEW.role)) USING stmts, NEW.search_path;
        IF guard THEN
            SELECT pg_catalog.string_agg(pg_catalog.split_part(x, ' #', 1), '; ') INTO gained
              FROM pg_catalog.unnest(replicator_ddl.elevated()) x WHERE x <> ALL (before);
            IF gained IS NOT NULL THEN
                RAISE EXCEPTION 'not replayed: on PostgreSQL before 16 the target''s apply worker runs triggers, check constraints and index expressions as the subscription''s owner, a superuser, so this change by % would run code with more rights than % has: %',
                    NEW.role, NEW.role, gained
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'review that code; if it is safe, run the statement on the target as a superuser; or replicate into PostgreSQL 16 or later, where it runs as the table''s owner';
            END IF;
        END IF;
        IF NEW.expect IS NOT NULL THEN
            FOR e IN SELECT * FROM pg_catalog.jsonb_array_elements(NEW.expect) LOOP
                differs := replicator_ddl.compare(e);
                IF differs IS NOT NULL THEN
                    NEW.error := coalesce(NEW.error || E'\n', '') || differs;
                END IF;
            END LOOP;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        DECLARE
            hint text;
        BEGIN
            GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
            NEW.error := SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')' || coalesce('; fix: ' || NULLIF(hint, ''), '');
        END;
    END;
    RETURN NEW;
END
$f$;

DROP TRIGGER IF EXISTS apply ON replicator_ddl.queue;
CREATE TRIGGER apply BEFORE INSERT ON replicator_ddl.queue FOR EACH ROW EXECUTE FUNCTION replicator_ddl.apply();
ALTER TABLE replicator_ddl.queue ENABLE REPLICA TRIGGER apply;

REVOKE ALL ON ALL TABLES IN SCHEMA replicator_ddl FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA replicator_ddl FROM PUBLIC;
