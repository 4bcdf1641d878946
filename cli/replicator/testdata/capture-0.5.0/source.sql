-- The schema change capture replicator 0.5.0 installed (internal/replication at
-- that release), to test that sync upgrades it in place. Do not install it.
-- Schema changes captured on the source (replicator sync --replicate-ddl).
-- Installed before the replication slot, so that every change after the
-- copy's snapshot is either in the snapshot or in the queue; removed by
-- replicator sync --stop. Nothing here may make a user's DDL fail: a
-- capture that goes wrong is queued as unreplicated, for status to report.
--
-- Trust: capture() runs with the rights of whoever ran the DDL. Anyone may
-- insert into the queue, but the stamp trigger writes the inserting role
-- into each row, and the target runs a row's statements as that role only:
-- a row cannot make the target do what its role could not do here.

CREATE SCHEMA IF NOT EXISTS replicator_ddl;
COMMENT ON SCHEMA replicator_ddl IS 'replicator: schema changes replicated to the target (dropped by replicator sync --stop)';

CREATE TABLE IF NOT EXISTS replicator_ddl.queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    captured_at timestamptz NOT NULL DEFAULT now(),
    role name NOT NULL DEFAULT current_user,
    search_path text NOT NULL DEFAULT '',
    command_tag text NOT NULL,
    statements text[] NOT NULL DEFAULT '{}',
    objects text[] NOT NULL DEFAULT '{}',
    new_tables text[] NOT NULL DEFAULT '{}',
    unreplicated text,
    note text,
    source_key text NOT NULL UNIQUE,
    applied_at timestamptz,
    error text
);

-- What the publication is, and whether new tables join it (not when table
-- filters choose what is published).
CREATE TABLE IF NOT EXISTS replicator_ddl.config (
    publication name NOT NULL,
    add_new_tables boolean NOT NULL,
    leaves boolean NOT NULL
);

-- Tables created since capture began: the only ones publish() adds later
-- (a table copied by init and published later would arrive twice).
CREATE TABLE IF NOT EXISTS replicator_ddl.created (relid oid PRIMARY KEY);

CREATE OR REPLACE FUNCTION replicator_ddl.stamp() RETURNS trigger
LANGUAGE plpgsql AS $f$
BEGIN
    NEW.role := current_user;
    NEW.captured_at := now();
    NEW.applied_at := NULL;
    NEW.error := NULL;
    RETURN NEW;
END
$f$;

DROP TRIGGER IF EXISTS stamp ON replicator_ddl.queue;
CREATE TRIGGER stamp BEFORE INSERT ON replicator_ddl.queue FOR EACH ROW EXECUTE FUNCTION replicator_ddl.stamp();

-- split cuts a query string into statements at top-level semicolons,
-- minding quotes, dollar quotes and comments; each starts at its first
-- word. One walk over a character array: substr on a multi-byte string
-- would be a walk per character.
CREATE OR REPLACE FUNCTION replicator_ddl.split(q text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE
    ch text[] := regexp_split_to_array(coalesce(q, ''), '');
    n int := cardinality(ch);
    out text[] := '{}';
    i int := 1;
    first int := 0;
    tag text;
    k int;
    depth int;
BEGIN
    WHILE i <= n LOOP
        IF ch[i] = '-' AND i < n AND ch[i+1] = '-' THEN
            WHILE i <= n AND ch[i] <> E'\n' LOOP i := i + 1; END LOOP;
            CONTINUE;
        ELSIF ch[i] = '/' AND i < n AND ch[i+1] = '*' THEN
            depth := 1; i := i + 2;
            WHILE i <= n AND depth > 0 LOOP
                IF ch[i] = '/' AND i < n AND ch[i+1] = '*' THEN depth := depth + 1; i := i + 2;
                ELSIF ch[i] = '*' AND i < n AND ch[i+1] = '/' THEN depth := depth - 1; i := i + 2;
                ELSE i := i + 1; END IF;
            END LOOP;
            CONTINUE;
        ELSIF ch[i] = ';' THEN
            IF first > 0 THEN out := out || array_to_string(ch[first:i-1], ''); END IF;
            first := 0; i := i + 1;
            CONTINUE;
        ELSIF ch[i] ~ '\s' THEN
            i := i + 1;
            CONTINUE;
        END IF;
        IF first = 0 THEN first := i; END IF;
        IF ch[i] = '''' THEN
            -- E'...' strings take backslash escapes.
            IF i > 1 AND ch[i-1] IN ('E', 'e') AND (i = 2 OR ch[i-2] !~ '[[:alnum:]_]') THEN
                i := i + 1;
                WHILE i <= n LOOP
                    IF ch[i] = E'\\' THEN i := i + 2;
                    ELSIF ch[i] = '''' AND i < n AND ch[i+1] = '''' THEN i := i + 2;
                    ELSIF ch[i] = '''' THEN EXIT;
                    ELSE i := i + 1; END IF;
                END LOOP;
            ELSE
                i := i + 1;
                WHILE i <= n LOOP
                    IF ch[i] = '''' AND i < n AND ch[i+1] = '''' THEN i := i + 2;
                    ELSIF ch[i] = '''' THEN EXIT;
                    ELSE i := i + 1; END IF;
                END LOOP;
            END IF;
            i := i + 1;
        ELSIF ch[i] = '"' THEN
            i := i + 1;
            WHILE i <= n LOOP
                IF ch[i] = '"' AND i < n AND ch[i+1] = '"' THEN i := i + 2;
                ELSIF ch[i] = '"' THEN EXIT;
                ELSE i := i + 1; END IF;
            END LOOP;
            i := i + 1;
        ELSIF ch[i] = '$' AND (i = 1 OR ch[i-1] !~ '[[:alnum:]_]') THEN
            -- $tag$ ... $tag$ (a $1 parameter is not one).
            k := i + 1;
            WHILE k <= n AND ch[k] ~ '[[:alpha:]_0-9]' AND NOT (k = i + 1 AND ch[k] ~ '[0-9]') LOOP k := k + 1; END LOOP;
            IF k <= n AND ch[k] = '$' THEN
                tag := array_to_string(ch[i:k], '');
                i := k + 1;
                k := strpos(array_to_string(ch[i:n], ''), tag);
                IF k = 0 THEN i := n + 1; ELSE i := i + k - 1 + length(tag); END IF;
            ELSE
                i := i + 1;
            END IF;
        ELSE
            i := i + 1;
        END IF;
    END LOOP;
    IF first > 0 THEN out := out || array_to_string(ch[first:n], ''); END IF;
    RETURN out;
END
$f$;

-- replayable says whether a statement is schema DDL the target should run:
-- database objects, not cluster-wide ones (roles, databases, tablespaces),
-- not replication's own objects, not user mappings (they hold passwords),
-- not temporary objects.
CREATE OR REPLACE FUNCTION replicator_ddl.replayable(s text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $f$
SELECT CASE
    WHEN w[1] IN ('create', 'alter', 'drop') THEN
        coalesce(w[2], '') NOT IN ('database', 'role', 'user', 'group', 'tablespace', 'subscription', 'publication', 'system', 'event', 'temp', 'temporary')
        AND NOT (w[2] IN ('or', 'global', 'local') AND coalesce(w[3], '') IN ('temp', 'temporary'))
    WHEN w[1] IN ('grant', 'revoke') THEN s ~* '\mon\M'
    WHEN w[1] IN ('comment', 'security', 'refresh', 'import') THEN true
    ELSE false
END
FROM (SELECT regexp_split_to_array(lower(substring(s FROM '^\s*([[:alpha:]_]+(?:\s+[[:alpha:]_]+){0,2})')), '\s+') AS w) x
$f$;

-- publish adds a table created since capture began to the publication,
-- when new tables join it and the table can be published. It returns why
-- not, or NULL. SECURITY DEFINER: the publication is the sync role's.
CREATE OR REPLACE FUNCTION replicator_ddl.publish(t regclass, created boolean) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    cfg record;
    rel record;
BEGIN
    SELECT * INTO cfg FROM replicator_ddl.config LIMIT 1;
    SELECT c.relkind, c.relpersistence, c.relispartition, c.relreplident, n.nspname,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                   AND (i.indisprimary AND c.relreplident = 'd' OR i.indisreplident)) AS keyed
      INTO rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = t;
    IF NOT FOUND OR rel.nspname = 'replicator_ddl' OR rel.nspname LIKE 'pg\_%'
       OR rel.relkind NOT IN ('r', 'p') OR rel.relpersistence <> 'p' THEN
        RETURN NULL;
    END IF;
    IF created THEN
        INSERT INTO replicator_ddl.created VALUES (t) ON CONFLICT DO NOTHING;
    ELSIF NOT EXISTS (SELECT 1 FROM replicator_ddl.created WHERE relid = t) THEN
        RETURN NULL;
    END IF;
    IF cfg IS NULL OR NOT cfg.add_new_tables THEN
        RETURN format('%s is new, and table filters choose what is published: its rows are not replicated', t);
    END IF;
    IF rel.relispartition AND NOT cfg.leaves OR rel.relkind = 'p' AND cfg.leaves THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
               WHERE p.pubname = cfg.publication AND pr.prrelid = t) THEN
        RETURN NULL;
    END IF;
    IF rel.relkind = 'r' AND rel.relreplident <> 'f' AND NOT rel.keyed THEN
        RETURN format('%s has no primary key or replica identity: its rows are replicated once it has one', t);
    END IF;
    PERFORM set_config('replicator_ddl.busy', 'on', true);
    EXECUTE format('ALTER PUBLICATION %I ADD TABLE %s', cfg.publication, t);
    PERFORM set_config('replicator_ddl.busy', 'off', true);
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN format('%s could not join publication %s: %s', t, cfg.publication, SQLERRM);
END
$f$;

-- capture queues the DDL statements of the client statement that fired the
-- event: once per client statement (a string of several statements fires
-- once per command; the key is the session, the statement's arrival and
-- its text), in the same transaction, so the target runs them in commit
-- order before the changes that depend on them.
CREATE OR REPLACE FUNCTION replicator_ddl.capture() RETURNS event_trigger
LANGUAGE plpgsql AS $f$
DECLARE
    q text := current_query();
    key text := pg_backend_pid() || '/' || statement_timestamp() || '/' || md5(coalesce(current_query(), ''));
    stmts text[] := '{}';
    objs text[] := '{}';
    created text[] := '{}';
    tables regclass[] := '{}';
    why text;
    note text;
    s text;
    t regclass;
BEGIN
    IF current_setting('replicator_ddl.busy', true) = 'on'
       OR TG_TAG LIKE '% PUBLICATION' OR TG_TAG LIKE '% SUBSCRIPTION' OR TG_TAG LIKE '% USER MAPPING' THEN
        RETURN;
    END IF;
    BEGIN
        IF TG_EVENT = 'sql_drop' THEN
            SELECT coalesce(array_agg(object_identity), '{}') INTO objs
              FROM pg_event_trigger_dropped_objects()
             WHERE original AND NOT is_temporary AND schema_name IS DISTINCT FROM 'replicator_ddl';
        ELSE
            SELECT coalesce(array_agg(object_identity), '{}'),
                   coalesce(array_agg(object_identity) FILTER (WHERE command_tag IN ('CREATE TABLE AS', 'SELECT INTO') AND object_type = 'table'), '{}'),
                   coalesce(array_agg(objid::regclass) FILTER (WHERE object_type IN ('table', 'table column') AND classid = 'pg_class'::regclass), '{}')
              INTO objs, created, tables
              FROM pg_event_trigger_ddl_commands()
             WHERE schema_name IS DISTINCT FROM 'replicator_ddl' AND schema_name NOT LIKE 'pg\_temp%';
        END IF;
        IF cardinality(objs) = 0 THEN
            RETURN; -- only temporary objects, or replicator's own
        END IF;
        FOREACH s IN ARRAY replicator_ddl.split(q) LOOP
            IF replicator_ddl.replayable(s) THEN
                stmts := stmts || s;
            END IF;
        END LOOP;
        IF cardinality(stmts) = 0 THEN
            why := format('%s ran inside a function, procedure or DO block (%s): only plain statements are replayed; run the change on the target', TG_TAG, left(q, 200));
        END IF;
        FOREACH t IN ARRAY tables LOOP
            s := replicator_ddl.publish(t, TG_TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO'));
            IF s IS NOT NULL THEN
                note := coalesce(note || '; ', '') || s;
            END IF;
        END LOOP;
        INSERT INTO replicator_ddl.queue (search_path, command_tag, statements, objects, new_tables, unreplicated, note, source_key)
        VALUES (current_setting('search_path'), TG_TAG, stmts, objs, created, why, note, key)
        ON CONFLICT DO NOTHING;
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO replicator_ddl.queue (command_tag, unreplicated, source_key)
        VALUES (TG_TAG, 'capture failed: ' || SQLERRM, key || '/failed')
        ON CONFLICT DO NOTHING;
    END;
END
$f$;

REVOKE ALL ON ALL TABLES IN SCHEMA replicator_ddl FROM PUBLIC;
GRANT USAGE ON SCHEMA replicator_ddl TO PUBLIC;
GRANT INSERT ON replicator_ddl.queue TO PUBLIC;
