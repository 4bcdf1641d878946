-- The schema change capture replicator 0.5.0 installed (internal/replication at
-- that release), to test that sync upgrades it in place. Do not install it.
-- The target's side of replicated schema changes: the queue, as published
-- (the subscription fills it), and a trigger that runs each row's
-- statements inside the apply worker's transaction, before the changes
-- that follow them. ENABLE REPLICA: it fires for the subscription's rows
-- only, never for a local insert.

CREATE SCHEMA IF NOT EXISTS replicator_ddl;
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
    error text
);
REVOKE ALL ON ALL TABLES IN SCHEMA replicator_ddl FROM PUBLIC;

-- run_as is the function that runs a row's statements for one role: SECURITY
-- DEFINER and owned by that role. Inside it the statements have exactly the
-- role's rights, and PostgreSQL refuses SET ROLE and SET SESSION
-- AUTHORIZATION there. A plain SET ROLE would not do: the apply worker's
-- session user is the subscription's owner, so a statement could SET ROLE
-- back to it. One function per role, made on first use; its name is the
-- role's md5 (role names may be as long as function names).
CREATE OR REPLACE FUNCTION replicator_ddl.run_as(r name) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
    fn text := 'replicator_ddl.as_' || md5(r);
BEGIN
    IF to_regprocedure(fn || '(text[],text,text[])') IS NULL THEN
        EXECUTE format($c$CREATE FUNCTION %s(stmts text[], path text, emptied text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $b$
DECLARE
    s text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', path, true);
    FOREACH s IN ARRAY stmts LOOP
        -- CONCURRENTLY cannot run inside the apply worker's transaction.
        s := pg_catalog.regexp_replace(s, '^((?:create\s+(?:unique\s+)?index|drop\s+index|reindex\s+[[:alpha:]]+|refresh\s+materialized\s+view))\s+concurrently\M', '\1', 'i');
        EXECUTE s;
    END LOOP;
    -- A table CREATE TABLE AS filled gets its rows with the subscription's refresh.
    FOREACH s IN ARRAY emptied LOOP
        EXECUTE 'TRUNCATE ' || s;
    END LOOP;
END
$b$$c$, fn);
        EXECUTE format('REVOKE ALL ON FUNCTION %s(text[], text, text[]) FROM PUBLIC', fn);
        EXECUTE format('ALTER FUNCTION %s(text[], text, text[]) OWNER TO %I', fn, r);
    END IF;
    RETURN fn;
END
$f$;

-- apply runs a row's statements as the role that ran them on the source,
-- with its search_path (never as the subscription's owner: a row can only do
-- what that role may do). A failure is kept in the row, for replicator
-- status, and the changes go on.
CREATE OR REPLACE FUNCTION replicator_ddl.apply() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $f$
BEGIN
    NEW.applied_at := now();
    IF cardinality(NEW.statements) = 0 THEN
        RETURN NEW;
    END IF;
    BEGIN
        EXECUTE format('SELECT %s($1, $2, $3)', replicator_ddl.run_as(NEW.role)) USING NEW.statements, NEW.search_path, NEW.new_tables;
    EXCEPTION WHEN OTHERS THEN
        NEW.error := SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')';
    END;
    RETURN NEW;
END
$f$;

DROP TRIGGER IF EXISTS apply ON replicator_ddl.queue;
CREATE TRIGGER apply BEFORE INSERT ON replicator_ddl.queue FOR EACH ROW EXECUTE FUNCTION replicator_ddl.apply();
ALTER TABLE replicator_ddl.queue ENABLE REPLICA TRIGGER apply;
