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

-- apply runs the statements as the role that ran them on the source (never
-- as the subscription's owner: a row can only do what that role may do),
-- with its search_path. CONCURRENTLY cannot run in a transaction and is
-- dropped. A table made by CREATE TABLE AS is emptied: its rows arrive
-- once, with the subscription's refresh. A failure is kept in the row, for
-- replicator status, and the changes go on.
CREATE OR REPLACE FUNCTION replicator_ddl.apply() RETURNS trigger
LANGUAGE plpgsql AS $f$
DECLARE
    me name := current_user;
    path text := current_setting('search_path');
    s text;
BEGIN
    NEW.applied_at := now();
    IF cardinality(NEW.statements) = 0 THEN
        RETURN NEW;
    END IF;
    BEGIN
        EXECUTE format('SET LOCAL ROLE %I', NEW.role);
        PERFORM set_config('search_path', NEW.search_path, true);
        FOREACH s IN ARRAY NEW.statements LOOP
            s := regexp_replace(s, '^((?:create\s+(?:unique\s+)?index|drop\s+index|reindex\s+[[:alpha:]]+|refresh\s+materialized\s+view))\s+concurrently\M', '\1', 'i');
            EXECUTE s;
        END LOOP;
        FOREACH s IN ARRAY NEW.new_tables LOOP
            EXECUTE 'TRUNCATE ' || s;
        END LOOP;
        EXECUTE format('SET LOCAL ROLE %I', me);
        PERFORM set_config('search_path', path, true);
    EXCEPTION WHEN OTHERS THEN
        NEW.error := SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')';
    END;
    RETURN NEW;
END
$f$;

DROP TRIGGER IF EXISTS apply ON replicator_ddl.queue;
CREATE TRIGGER apply BEFORE INSERT ON replicator_ddl.queue FOR EACH ROW EXECUTE FUNCTION replicator_ddl.apply();
ALTER TABLE replicator_ddl.queue ENABLE REPLICA TRIGGER apply;
