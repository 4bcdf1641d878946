-- Schema changes captured on the source (replicator sync --replicate-ddl).
-- Installed before the replication slot, so that every change after the
-- copy's snapshot is either in the snapshot or in the queue; removed by
-- replicator sync --stop. Nothing here may make a user's DDL fail: a
-- capture that goes wrong is queued as unreplicated, for status to report.
--
-- Trust. These functions run inside other people's sessions, so:
-- - every function pins search_path = pg_catalog, pg_temp, where no user
--   operator, function or cast can stand in for a built-in one; the one
--   exception is capture(), the event trigger's entry point, which must read
--   the session's search_path: it holds a single schema-qualified call with
--   arguments of exact types, and nothing else;
-- - nobody but the sync role may call them or write the queue: capture() is
--   SECURITY DEFINER (owned by the role that set up sync) and the only way
--   rows get in; the author of each row is the session's role, which no
--   argument can forge; the statement is the client's own text, cut from
--   current_query();
-- - the target runs each row as its author (see ddl_target.sql).

COMMENT ON SCHEMA replicator_ddl IS 'replicator: schema changes replicated to the target (dropped by replicator sync --stop)';

CREATE TABLE IF NOT EXISTS replicator_ddl.queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    captured_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role name NOT NULL,
    search_path text NOT NULL DEFAULT '',
    command_tag text NOT NULL,
    statements text[] NOT NULL DEFAULT '{}',
    objects text[] NOT NULL DEFAULT '{}',
    new_tables text[] NOT NULL DEFAULT '{}',
    unreplicated text,
    note text,
    source_key text NOT NULL UNIQUE,
    applied_at timestamptz,
    error text,
    expect jsonb
);

-- Over a capture that replicator 0.5 installed: what changed in its tables.
ALTER TABLE replicator_ddl.queue ADD COLUMN IF NOT EXISTS expect jsonb;
ALTER TABLE replicator_ddl.queue ALTER COLUMN role DROP DEFAULT;
DROP TRIGGER IF EXISTS stamp ON replicator_ddl.queue;

-- What the publication is, and whether new tables join it (not when table
-- filters choose what is published).
CREATE TABLE IF NOT EXISTS replicator_ddl.config (
    publication name NOT NULL,
    add_new_tables boolean NOT NULL
);

-- Tables created since capture began: the only ones publish_new() adds later
-- (a table copied by init and published later would arrive twice); noted:
-- a queue row says it has no key.
CREATE TABLE IF NOT EXISTS replicator_ddl.created (relid oid PRIMARY KEY, noted boolean NOT NULL DEFAULT false);
ALTER TABLE replicator_ddl.config DROP COLUMN IF EXISTS leaves;
ALTER TABLE replicator_ddl.created ADD COLUMN IF NOT EXISTS noted boolean NOT NULL DEFAULT false;
-- 0.5's functions: stamp() let anyone write the queue, publish() published
-- from the application's transaction.
DROP FUNCTION IF EXISTS replicator_ddl.stamp();
DROP FUNCTION IF EXISTS replicator_ddl.replayable(text);
DROP FUNCTION IF EXISTS replicator_ddl.publish(regclass, boolean);

-- pending holds, per session, the statements of the client query strings
-- being run (row 0 of each marks it cut): each top-level event takes the
-- next statement that can have fired it (the cursor is the setting
-- replicator_ddl.at), so a string of many statements is cut once, and each
-- statement is queued with the search_path and role in force when it ran.
-- Rows are written once and never changed while their transaction runs (a
-- row updated or deleted again and again in one transaction leaves versions
-- that every later lookup walks); a session's rows of earlier transactions
-- go at its next one. Unlogged: nothing here outlives a query string.
CREATE UNLOGGED TABLE IF NOT EXISTS replicator_ddl.pending (
    pid int NOT NULL,
    key text NOT NULL,
    n int NOT NULL,
    xact bigint NOT NULL,
    stmt text,
    words text,
    fires "char",
    into_at int,
    dropped text[],
    PRIMARY KEY (pid, key, n)
);
CREATE INDEX IF NOT EXISTS pending_xact ON replicator_ddl.pending (pid, xact);

-- split cuts a query string into statements at top-level semicolons, as
-- psql does: minding quotes, dollar quotes, nested comments, parentheses and
-- BEGIN ATOMIC ... END bodies. Per statement: its text from its first
-- token; its leading words, lower case, CREATE's modifiers (OR REPLACE,
-- UNIQUE, TEMP, ...) left out; whether it fires an event trigger (y), may
-- (m: SELECT ... INTO) or never does (n, also for statements a later
-- ROLLBACK undoes); and where a SELECT's INTO is. One pass over the bytes
-- (get_byte is constant time; every character that matters is ASCII, and
-- multi-byte characters never contain an ASCII byte).
CREATE OR REPLACE FUNCTION replicator_ddl.split(q text, scs boolean DEFAULT true)
RETURNS TABLE (n int, stmt text, words text, fires "char", into_at int)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    enc name := pg_catalog.getdatabaseencoding();
    b bytea := pg_catalog.convert_to(coalesce(q, ''), enc);
    len int := pg_catalog.length(b);
    i int := 0;
    c int;
    d int;
    k int;
    first int := -1;   -- first byte of the statement, -1 before its first token
    stop int := 0;     -- byte after its last token
    depth int := 0;    -- parentheses
    atomic int := 0;   -- BEGIN ... END in a routine body
    routine boolean := false;
    escapes boolean;
    w text[] := '{}';
    nw int := 0;
    word text;
    into_b int := -1;  -- byte of INTO at depth 0
    on_obj text := NULL;
    seen_on boolean := false;
    tag bytea;
    hit int;
    -- per statement
    s_text text[] := '{}';
    s_words text[] := '{}';
    s_fires "char"[] := '{}';
    s_into int[] := '{}';
    -- transactions
    seg int := 1;
    sp text[] := '{}';
    sp_at int[] := '{}';
    j int;
    m int;
    obj text;
    norm text[];
BEGIN
    WHILE i <= len LOOP
        IF i < len THEN c := pg_catalog.get_byte(b, i); ELSE c := 59; END IF;  -- the end ends a statement
        IF c IN (32, 9, 10, 13, 12, 11) THEN
            i := i + 1; CONTINUE;
        ELSIF c = 45 AND i + 1 < len AND pg_catalog.get_byte(b, i + 1) = 45 THEN  -- -- comment
            WHILE i < len AND pg_catalog.get_byte(b, i) NOT IN (10, 13) LOOP i := i + 1; END LOOP;
            CONTINUE;
        ELSIF c = 47 AND i + 1 < len AND pg_catalog.get_byte(b, i + 1) = 42 THEN  -- /* comment */, nested
            d := 1; i := i + 2;
            WHILE i < len AND d > 0 LOOP
                c := pg_catalog.get_byte(b, i);
                IF c = 47 AND i + 1 < len AND pg_catalog.get_byte(b, i + 1) = 42 THEN d := d + 1; i := i + 2;
                ELSIF c = 42 AND i + 1 < len AND pg_catalog.get_byte(b, i + 1) = 47 THEN d := d - 1; i := i + 2;
                ELSE i := i + 1; END IF;
            END LOOP;
            CONTINUE;
        ELSIF c = 59 AND (i = len OR depth = 0 AND atomic = 0) THEN  -- ; ends a statement
            IF first >= 0 THEN
                s_text := s_text || pg_catalog.convert_from(substring(b FROM first + 1 FOR stop - first), enc);
                -- CREATE's modifiers do not change the command tag.
                norm := w;
                IF norm[1] = 'create' THEN
                    j := 2;
                    WHILE norm[j] IN ('or', 'replace', 'unique', 'temp', 'temporary', 'unlogged', 'global', 'local',
                                      'trusted', 'procedural', 'default', 'constraint', 'recursive') LOOP
                        j := j + 1;
                    END LOOP;
                    norm := ARRAY['create'] || norm[j:];
                END IF;
                s_words := s_words || pg_catalog.array_to_string(norm, ' ');
                obj := CASE WHEN norm[1] IN ('create', 'alter', 'drop') THEN norm[2] END;
                s_fires := s_fires || (CASE
                    WHEN norm[1] IN ('create', 'alter', 'drop') THEN
                        CASE WHEN obj IN ('database', 'role', 'group', 'tablespace', 'event')
                               OR obj = 'user' AND norm[3] IS DISTINCT FROM 'mapping'
                               OR norm[1] = 'alter' AND obj = 'system' THEN 'n' ELSE 'y' END
                    WHEN norm[1] IN ('grant', 'revoke') THEN
                        CASE WHEN NOT seen_on OR on_obj IN ('database', 'tablespace', 'parameter') THEN 'n' ELSE 'y' END
                    WHEN norm[1] IN ('comment', 'security') THEN
                        CASE WHEN on_obj IN ('database', 'role', 'tablespace', 'event') THEN 'n' ELSE 'y' END
                    WHEN norm[1] IN ('refresh', 'import') THEN 'y'
                    WHEN norm[1] IN ('select', 'with') AND into_b >= 0 THEN 'm'
                    ELSE 'n' END)::"char";
                s_into := s_into || CASE WHEN into_b >= 0
                    THEN pg_catalog.length(pg_catalog.convert_from(substring(b FROM first + 1 FOR into_b - first), enc)) END;
            END IF;
            first := -1; depth := 0; atomic := 0; routine := false; w := '{}'; nw := 0;
            into_b := -1; on_obj := NULL; seen_on := false;
            i := i + 1; CONTINUE;
        END IF;
        IF first < 0 THEN first := i; END IF;
        IF c = 39 THEN  -- 'string', E'string' when a lone E precedes it
            escapes := NOT scs OR i > 0 AND pg_catalog.get_byte(b, i - 1) IN (69, 101)
                       AND (i = 1 OR pg_catalog.get_byte(b, i - 2) NOT BETWEEN 48 AND 57
                            AND pg_catalog.get_byte(b, i - 2) NOT BETWEEN 65 AND 90
                            AND pg_catalog.get_byte(b, i - 2) NOT BETWEEN 97 AND 122
                            AND pg_catalog.get_byte(b, i - 2) NOT IN (95, 36) AND pg_catalog.get_byte(b, i - 2) < 128);
            i := i + 1;
            WHILE i < len LOOP
                c := pg_catalog.get_byte(b, i);
                IF escapes AND c = 92 THEN i := i + 2;
                ELSIF c = 39 AND i + 1 < len AND pg_catalog.get_byte(b, i + 1) = 39 THEN i := i + 2;
                ELSIF c = 39 THEN EXIT;
                ELSE i := i + 1; END IF;
            END LOOP;
            i := i + 1;
        ELSIF c = 34 THEN  -- "identifier"
            i := i + 1;
            WHILE i < len LOOP
                c := pg_catalog.get_byte(b, i);
                IF c = 34 AND i + 1 < len AND pg_catalog.get_byte(b, i + 1) = 34 THEN i := i + 2;
                ELSIF c = 34 THEN EXIT;
                ELSE i := i + 1; END IF;
            END LOOP;
            i := i + 1;
            nw := nw + 1;
            IF nw <= 24 THEN w := w || '"'::text; END IF;
            IF seen_on AND on_obj IS NULL THEN on_obj := '"'; END IF;
        ELSIF c = 36 AND (i + 1 < len) THEN  -- $tag$ ... $tag$ ($1 is a parameter)
            k := i + 1;
            WHILE k < len LOOP
                d := pg_catalog.get_byte(b, k);
                EXIT WHEN NOT (d BETWEEN 65 AND 90 OR d BETWEEN 97 AND 122 OR d = 95 OR d >= 128 OR d BETWEEN 48 AND 57 AND k > i + 1);
                k := k + 1;
            END LOOP;
            IF k < len AND pg_catalog.get_byte(b, k) = 36 THEN
                tag := substring(b FROM i + 1 FOR k - i + 1);
                hit := position(tag IN substring(b FROM k + 2));
                IF hit = 0 THEN i := len; ELSE i := k + 1 + hit - 1 + pg_catalog.length(tag); END IF;
            ELSE
                i := i + 1;
                WHILE i < len AND pg_catalog.get_byte(b, i) BETWEEN 48 AND 57 LOOP i := i + 1; END LOOP;
            END IF;
        ELSIF c BETWEEN 65 AND 90 OR c BETWEEN 97 AND 122 OR c = 95 OR c >= 128 THEN  -- a word
            k := i;
            WHILE i < len LOOP
                d := pg_catalog.get_byte(b, i);
                EXIT WHEN NOT (d BETWEEN 65 AND 90 OR d BETWEEN 97 AND 122 OR d BETWEEN 48 AND 57 OR d IN (95, 36) OR d >= 128);
                i := i + 1;
            END LOOP;
            nw := nw + 1;
            -- Past the leading words only a few short ones matter (ON,
            -- INTO, BEGIN, CASE, END): the others are not read.
            IF nw <= 24 OR i - k BETWEEN 2 AND 5 THEN
                word := pg_catalog.lower(pg_catalog.convert_from(substring(b FROM k + 1 FOR i - k), enc));
            ELSE
                word := '';
            END IF;
            IF nw <= 24 THEN w := w || word; END IF;
            IF nw = 2 OR nw = 4 THEN
                routine := w[1] = 'create' AND (w[2] IN ('function', 'procedure')
                           OR w[2] = 'or' AND w[3] = 'replace' AND w[4] IN ('function', 'procedure'));
            END IF;
            IF depth = 0 THEN
                IF seen_on AND on_obj IS NULL THEN on_obj := word; END IF;
                IF word = 'on' AND NOT seen_on THEN seen_on := true; END IF;
                IF word = 'into' AND into_b < 0 THEN into_b := k; END IF;
                -- psql's rule for BEGIN ATOMIC ... END (CASE ... END inside it).
                IF routine THEN
                    IF word = 'begin' THEN atomic := atomic + 1;
                    ELSIF word = 'case' AND atomic >= 1 THEN atomic := atomic + 1;
                    ELSIF word = 'end' AND atomic > 0 THEN atomic := atomic - 1;
                    END IF;
                END IF;
            END IF;
        ELSIF c BETWEEN 48 AND 57 THEN  -- a number
            WHILE i < len AND (pg_catalog.get_byte(b, i) BETWEEN 48 AND 57 OR pg_catalog.get_byte(b, i) IN (46, 95)) LOOP i := i + 1; END LOOP;
        ELSIF c = 40 THEN
            depth := depth + 1; i := i + 1;
        ELSIF c = 41 THEN
            depth := greatest(depth - 1, 0); i := i + 1;
        ELSE
            i := i + 1;
        END IF;
        IF i > len THEN i := len; END IF;  -- an unterminated quote runs to the end
        stop := i;
    END LOOP;

    -- Statements a ROLLBACK undoes fire nothing that lasts: after it, the
    -- events of the statements that follow must not be matched to them.
    FOR j IN 1 .. coalesce(pg_catalog.cardinality(s_words), 0) LOOP
        norm := pg_catalog.array_remove(pg_catalog.array_remove(pg_catalog.string_to_array(s_words[j], ' '), 'work'), 'transaction');
        IF norm[1] IN ('commit', 'end') AND norm[2] IS DISTINCT FROM 'prepared'
           OR norm[1] = 'prepare' AND norm[2] = 'transaction' THEN
            seg := j + 1; sp := '{}'; sp_at := '{}';
        ELSIF norm[1] IN ('rollback', 'abort') AND norm[2] IS DISTINCT FROM 'prepared' THEN
            IF norm[2] = 'to' THEN
                -- ROLLBACK TO [SAVEPOINT] name: back to the latest savepoint of that name.
                word := CASE WHEN norm[3] = 'savepoint' THEN norm[4] ELSE norm[3] END;
                m := NULL;
                FOR k IN REVERSE coalesce(pg_catalog.cardinality(sp), 0) .. 1 LOOP
                    IF sp[k] IS NOT DISTINCT FROM word OR word IS NULL OR word = '"' THEN m := k; EXIT; END IF;
                END LOOP;
                IF m IS NOT NULL THEN
                    FOR k IN sp_at[m] + 1 .. j LOOP s_fires[k] := 'n'; END LOOP;
                    sp := sp[1:m]; sp_at := sp_at[1:m];
                END IF;
            ELSE
                FOR k IN seg .. j LOOP s_fires[k] := 'n'; END LOOP;
                seg := j + 1; sp := '{}'; sp_at := '{}';
            END IF;
        ELSIF norm[1] = 'savepoint' THEN
            sp := sp || norm[2]; sp_at := sp_at || j;
        ELSIF norm[1] = 'release' THEN
            word := CASE WHEN norm[2] = 'savepoint' THEN norm[3] ELSE norm[2] END;
            FOR k IN REVERSE coalesce(pg_catalog.cardinality(sp), 0) .. 1 LOOP
                IF sp[k] IS NOT DISTINCT FROM word OR word IS NULL OR word = '"' THEN
                    sp := sp[1:k - 1]; sp_at := sp_at[1:k - 1]; EXIT;
                END IF;
            END LOOP;
        END IF;
    END LOOP;
    RETURN QUERY SELECT x.n::int, s_text[x.n], s_words[x.n], s_fires[x.n], s_into[x.n]
                   FROM pg_catalog.generate_series(1, coalesce(pg_catalog.cardinality(s_text), 0)) AS x(n);
END
$f$;

-- select_into turns SELECT ... INTO [TEMP | UNLOGGED] [TABLE] name ... into
-- CREATE TABLE identity AS SELECT ... (EXECUTE, on the target, refuses
-- SELECT INTO). at is where INTO is (from split).
CREATE OR REPLACE FUNCTION replicator_ddl.select_into(s text, at int, identity text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $f$
SELECT pg_catalog.format('CREATE %sTABLE %s AS %s %s',
    CASE WHEN rest ~* '^\s*unlogged\M' THEN 'UNLOGGED ' ELSE '' END, identity,
    pg_catalog.left(s, at),
    pg_catalog.regexp_replace(rest, '^\s*(?:(?:temp|temporary|unlogged)\s+)?(?:table\s+)?(?:"(?:[^"]|"")*"|[^\s"().,;]+)(?:\s*\.\s*(?:"(?:[^"]|"")*"|[^\s"().,;]+))*', '', 'i'))
FROM (SELECT pg_catalog.substr(s, at + 5) AS rest) x
$f$;

-- track follows the tables created since capture began, the only ones
-- that join the publication later (a table copied by init and published
-- again would arrive twice). It returns what status should say of a new
-- table that cannot join, and clears it once it can. Joining happens in
-- publish_new(), when sync (or a remote job's monitor) next refreshes the
-- subscription, not in the application's transaction: a new table's rows
-- reach the target through the refresh's copy in any case.
CREATE OR REPLACE FUNCTION replicator_ddl.track(t regclass, is_new boolean) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    why text;
BEGIN
    IF is_new THEN
        IF NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.oid = t AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
                          AND n.nspname <> 'replicator_ddl' AND n.nspname NOT LIKE 'pg\_%') THEN
            RETURN NULL;
        END IF;
        INSERT INTO replicator_ddl.created VALUES (t) ON CONFLICT DO NOTHING;
    ELSIF NOT EXISTS (SELECT 1 FROM replicator_ddl.created c WHERE c.relid = t) THEN
        RETURN NULL; -- not new: it replicates since the copy
    END IF;
    why := replicator_ddl.unjoinable(t);
    IF why IS NOT NULL THEN
        -- Said once, when it stops being able to join (a key dropped, say).
        UPDATE replicator_ddl.created c SET noted = true WHERE c.relid = t AND NOT c.noted;
        RETURN CASE WHEN FOUND OR is_new THEN why END;
    END IF;
    IF NOT is_new AND EXISTS (SELECT 1 FROM replicator_ddl.created c WHERE c.relid = t AND c.noted) THEN
        -- What was said of it no longer holds.
        UPDATE replicator_ddl.queue q
           SET note = NULLIF(pg_catalog.array_to_string(ARRAY(
                   SELECT x FROM pg_catalog.unnest(pg_catalog.string_to_array(q.note, E'\n')) x
                    WHERE NOT pg_catalog.starts_with(x, t::text || ' ')), E'\n'), '')
         WHERE pg_catalog.strpos(q.note, t::text || ' ') > 0;
        UPDATE replicator_ddl.created c SET noted = false WHERE c.relid = t;
    END IF;
    RETURN NULL;
END
$f$;

-- unjoinable says why new table t cannot join the publication, or NULL.
-- A partitioned table never joins itself: its partitions do, each with its
-- own key (a partition of a keyless table has none), and a partition that
-- is detached goes on replicating as the table it becomes.
CREATE OR REPLACE FUNCTION replicator_ddl.unjoinable(t regclass) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    rel record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM replicator_ddl.config c WHERE c.add_new_tables) THEN
        RETURN pg_catalog.format('%s is new, and table filters choose what is published: its rows are not replicated', t);
    END IF;
    SELECT c.relkind, c.relpersistence, c.relreplident,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                   AND (i.indisprimary AND c.relreplident = 'd' OR i.indisreplident AND c.relreplident = 'i')) AS keyed
      INTO rel FROM pg_class c WHERE c.oid = t;
    IF NOT FOUND OR rel.relkind = 'p' THEN
        RETURN NULL;
    ELSIF rel.relpersistence = 'u' THEN
        RETURN pg_catalog.format('%s is unlogged: PostgreSQL does not replicate its rows; fix: ALTER TABLE %s SET LOGGED on the source, and it joins', t, t);
    ELSIF rel.relreplident <> 'f' AND NOT rel.keyed THEN
        RETURN pg_catalog.format('%s has no primary key or replica identity, so it is not published (its UPDATEs and DELETEs would fail on the source) and its rows are not replicated; fix: add a primary key on the source, or ALTER TABLE %s REPLICA IDENTITY FULL, and it joins', t, t);
    END IF;
    RETURN NULL;
END
$f$;

-- joinable lists the new tables that can join the publication and have
-- not: status shows them as waiting; publish_new() adds them.
CREATE OR REPLACE FUNCTION replicator_ddl.joinable() RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $f$
SELECT c.oid::regclass
  FROM replicator_ddl.created n JOIN pg_class c ON c.oid = n.relid, replicator_ddl.config cfg
 WHERE c.relkind = 'r' AND replicator_ddl.unjoinable(c.oid) IS NULL
   AND NOT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
                    WHERE p.pubname = cfg.publication AND pr.prrelid = c.oid)
 ORDER BY 1
$f$;

-- publish_new adds the joinable tables to the publication (replicator sync
-- and the monitor call it just before they refresh the subscription).
CREATE OR REPLACE FUNCTION replicator_ddl.publish_new() RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT * FROM replicator_ddl.joinable() LOOP
        EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLE %s', (SELECT publication FROM replicator_ddl.config LIMIT 1), t);
        RETURN NEXT t::text;
    END LOOP;
END
$f$;

-- added_columns reads the column names an ALTER TABLE statement adds.
CREATE OR REPLACE FUNCTION replicator_ddl.added_columns(s text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    RETURN (SELECT coalesce(pg_catalog.array_agg(CASE WHEN m[1] LIKE '"%' THEN pg_catalog.replace(pg_catalog.substr(m[1], 2, pg_catalog.length(m[1]) - 2), '""', '"') ELSE pg_catalog.lower(m[1]) END), '{}')
              FROM pg_catalog.regexp_matches(s, '\madd\s+(?:column\s+)?(?:if\s+not\s+exists\s+)?("(?:[^"]|"")+"|[[:alpha:]_][[:alnum:]_$]*)', 'gi') m
             WHERE pg_catalog.lower(m[1]) NOT IN ('constraint', 'primary', 'unique', 'check', 'foreign', 'exclude', 'column'));
END
$f$;

-- new_values looks at the columns statement s added to table t, when t has
-- rows: a default that is not immutable gave the existing rows a value on
-- each side of its own. A fast default (one value for them all) is checked
-- on the target (expect); an identity or volatile default (a value per row)
-- is reported (note).
CREATE OR REPLACE FUNCTION replicator_ddl.new_values(t regclass, s text, OUT note text, OUT expect jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    col record;
    has_rows boolean;
    added text[] := replicator_ddl.added_columns(s);
BEGIN
    expect := '[]';
    IF pg_catalog.cardinality(added) = 0 OR NOT EXISTS (
        SELECT 1 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = t AND a.attname = ANY (added)
           AND (a.attidentity <> '' OR d.adbin IS NOT NULL AND d.adbin::text NOT LIKE '{CONST %')) THEN
        expect := NULL;
        RETURN;
    END IF;
    FOR col IN
        SELECT a.attname, a.attidentity, a.atthasmissing, a.attmissingval::text AS missing,
               pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS def,
               d.adbin::text ~ ':(?:funcid|opfuncid) (\d+)|SQLVALUEFUNCTION|NEXTVALUEEXPR' AND (
                   d.adbin::text ~ 'SQLVALUEFUNCTION|NEXTVALUEEXPR'
                   OR EXISTS (SELECT 1 FROM pg_catalog.regexp_matches(d.adbin::text, ':(?:funcid|opfuncid) (\d+)', 'g') f
                              JOIN pg_proc p ON p.oid = f[1]::oid WHERE p.provolatile <> 'i')) AS mutable
          FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = t AND a.attname = ANY (added) AND NOT a.attisdropped AND a.attgenerated = ''
    LOOP
        CONTINUE WHEN col.attidentity = '' AND NOT coalesce(col.mutable, false);
        IF has_rows IS NULL THEN
            IF NOT pg_catalog.has_table_privilege(t, 'SELECT') THEN
                has_rows := true; -- cannot look: say what may differ
            ELSE
                EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s)', t) INTO has_rows;
            END IF;
        END IF;
        EXIT WHEN NOT has_rows;
        IF col.attidentity <> '' OR col.mutable AND NOT col.atthasmissing THEN
            note := coalesce(note || E'\n', '') || pg_catalog.format(
                'column %I of %s was added with %s: each side gave the existing rows values of its own, and they differ; fix: on the source, UPDATE %s SET %I = %I, which replicates each row''s value (for GENERATED ALWAYS: ALTER COLUMN ... SET GENERATED BY DEFAULT before, SET GENERATED ALWAYS after), or copy the table again if %I is its key',
                col.attname, t, CASE WHEN col.attidentity <> '' THEN 'an identity' ELSE pg_catalog.format('a default computed for each row (%s)', col.def) END,
                t, col.attname, col.attname, col.attname);
        ELSIF col.mutable AND col.atthasmissing THEN
            expect := expect || pg_catalog.jsonb_build_object('check', 'default', 'relation', t::text, 'column', col.attname, 'value', col.missing, 'default', col.def);
        END IF;
    END LOOP;
    IF pg_catalog.jsonb_array_length(expect) = 0 THEN
        expect := NULL;
    END IF;
END
$f$;

-- detached_checks returns, for the partition that ALTER TABLE ... DETACH
-- PARTITION statement s detached (its name resolved with the author's
-- search_path), a statement that adds each of its CHECK constraints the
-- target lacks: DETACH ... CONCURRENTLY adds one, a plain DETACH none.
CREATE OR REPLACE FUNCTION replicator_ddl.detached_checks(s text, path text) RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    name text := (pg_catalog.regexp_match(s, '\mdetach\s+partition\s+((?:"(?:[^"]|"")*"|[^\s"().,;]+)(?:\s*\.\s*(?:"(?:[^"]|"")*"|[^\s"().,;]+))?)', 'i'))[1];
    part regclass;
    out text[];
BEGIN
    -- Only a relation is looked up under the author's path: nothing runs.
    PERFORM pg_catalog.set_config('search_path', path, true);
    part := pg_catalog.to_regclass(name);
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    SELECT pg_catalog.array_agg(pg_catalog.format(
               'DO %L', pg_catalog.format('BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid OPERATOR(pg_catalog.=) %L::pg_catalog.regclass AND conname OPERATOR(pg_catalog.=) %L) THEN ALTER TABLE %s ADD CONSTRAINT %I %s; END IF; END',
                                          part::text, k.conname, part, k.conname, pg_catalog.pg_get_constraintdef(k.oid))) ORDER BY k.oid)
      INTO out FROM pg_constraint k WHERE k.conrelid = part AND k.contype = 'c';
    RETURN coalesce(out, '{}');
END
$f$;

-- record queues the statement whose event fired: called by capture() only
-- (owned by the sync role; nobody else may run it). Top-level statements
-- are queued for replay, one row each, with the search_path and role in
-- force when they ran; DDL run inside a function, procedure or DO block is
-- queued as unreplicated (running the block again on the target could
-- repeat its row changes), once per client statement.
CREATE OR REPLACE FUNCTION replicator_ddl.record(path text, ev text, tg text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    q text;  -- the client's query string, read when needed (it may be large)
    me int := pg_catalog.pg_backend_pid();
    -- The query string: each message from the client starts a statement
    -- (in microseconds since the epoch: no setting changes how it reads).
    qkey text := (EXTRACT(epoch FROM pg_catalog.statement_timestamp()) * 1000000)::bigint::text;
    my_xact bigint := pg_catalog.txid_current();
    cur int := 0;
    -- The session's role: who ran the statement (current_user here is the
    -- sync role). SET ROLE only takes roles the session may become.
    author name := CASE pg_catalog.current_setting('role') WHEN 'none' THEN session_user ELSE pg_catalog.current_setting('role') END;
    ctx text;
    nested boolean;
    excluded boolean := tg LIKE '% PUBLICATION' OR tg LIKE '% SUBSCRIPTION' OR tg LIKE '% USER MAPPING';
    cmds int := 0;
    in_ext boolean := false;
    objs text[] := '{}';
    created text[] := '{}';
    tables regclass[] := '{}';
    views regclass[] := '{}';
    p record;
    matched boolean;
    prefix text;
    found_one boolean;
    kept boolean;
    noted boolean := true;
    v_stmt text;
    extra text[] := '{}';
    note text;
    expect jsonb;
    nv record;
    s text;
    t regclass;
BEGIN
    IF excluded AND ev = 'sql_drop' THEN
        RETURN;
    END IF;
    -- No EXCEPTION block: a subtransaction per event costs a walk over
    -- everything the transaction created (relation cache, pending file
    -- deletions), so a migration creating thousands of tables would slow
    -- down quadratically. Nothing here can fail on the user's objects: what
    -- reads them checks its privilege first, and says so when it lacks it.
    -- Only cutting a string and reading a detached partition, once per
    -- statement of their kind, keep a guard.
    BEGIN
        -- Called from capture() for a client's statement, the context is
        -- this function, its SELECT and capture(); more means the DDL ran
        -- inside a function, procedure, DO block or trigger.
        GET DIAGNOSTICS ctx = PG_CONTEXT;
        nested := pg_catalog.array_length(pg_catalog.string_to_array(ctx, E'\n'), 1) > 3;
        IF ev = 'sql_drop' THEN
            SELECT coalesce(pg_catalog.array_agg(o.object_identity), '{}') INTO objs
              FROM pg_catalog.pg_event_trigger_dropped_objects() o
             WHERE o.original AND NOT o.is_temporary AND o.schema_name IS DISTINCT FROM 'replicator_ddl';
        ELSE
            SELECT pg_catalog.count(*), coalesce(pg_catalog.bool_or(c.in_extension), false),
                   coalesce(pg_catalog.array_agg(coalesce(c.object_identity, pg_catalog.lower(c.object_type))) FILTER (WHERE c.keep), '{}'),
                   coalesce(pg_catalog.array_agg(c.object_identity) FILTER (WHERE c.keep AND c.command_tag IN ('CREATE TABLE AS', 'SELECT INTO') AND c.object_type = 'table'), '{}'),
                   coalesce(pg_catalog.array_agg(c.objid::regclass) FILTER (WHERE c.keep AND c.object_type IN ('table', 'table column') AND c.classid = 'pg_catalog.pg_class'::regclass), '{}'),
                   coalesce(pg_catalog.array_agg(c.objid::regclass) FILTER (WHERE c.keep AND c.object_type = 'materialized view' AND c.classid = 'pg_catalog.pg_class'::regclass), '{}')
              INTO cmds, in_ext, objs, created, tables, views
              FROM (SELECT d.*, d.schema_name IS NULL OR d.schema_name <> 'replicator_ddl' AND d.schema_name NOT LIKE 'pg\_temp%' AS keep
                      FROM pg_catalog.pg_event_trigger_ddl_commands() d) c;
        END IF;
        IF in_ext THEN
            RETURN; -- an extension's script: CREATE EXTENSION itself is queued
        END IF;

        IF nested THEN
            IF NOT excluded AND pg_catalog.cardinality(objs) > 0 THEN
                q := pg_catalog.left(pg_catalog.current_query(), 200);
                INSERT INTO replicator_ddl.queue (role, search_path, command_tag, objects, unreplicated, source_key)
                VALUES (author, path, tg, objs,
                        pg_catalog.format('%s ran inside a function, procedure or DO block (%s): only statements sent by a client are replayed; make the same change on the target', tg, q),
                        me || '/' || qkey || '/inner')
                ON CONFLICT (source_key) DO NOTHING;
            END IF;
            RETURN;
        END IF;

        -- The statements of this query string, cut once and kept in
        -- pending while its events come; a string of one statement that
        -- drops nothing needs no keeping.
        IF pg_catalog.split_part(pg_catalog.current_setting('replicator_ddl.at', true), '#', 1) = qkey THEN
            cur := pg_catalog.split_part(pg_catalog.current_setting('replicator_ddl.at', true), '#', 2)::int;
            kept := true;
        ELSE
            kept := EXISTS (SELECT 1 FROM replicator_ddl.pending x WHERE x.pid = me AND x.key = qkey AND x.n = 0);
        END IF;
        IF NOT kept THEN
            q := pg_catalog.current_query();
            IF ev = 'ddl_command_end' AND q !~ ';\s*\S' AND q ~ '^\s*[[:alpha:]]' AND tg <> 'SELECT INTO' THEN
                -- One statement, no comment before it: its leading words are enough.
                SELECT 1 AS n, pg_catalog.rtrim(pg_catalog.ltrim(q), E'; \t\r\n') AS stmt, pg_catalog.array_to_string(w, ' ') AS words,
                       'y'::"char" AS fires, NULL::int AS into_at, NULL::text[] AS dropped INTO p
                  FROM (SELECT pg_catalog.regexp_split_to_array(pg_catalog.lower(substring(q FROM '^\s*([[:alpha:]_][[:alnum:]_$]*(?:\s+[[:alpha:]_][[:alnum:]_$]*){0,5})')), '\s+') AS w) x;
                -- CREATE's modifiers do not change the command tag.
                IF p.words ~ '^create ' THEN
                    p.words := pg_catalog.regexp_replace(p.words, '^create( (or|replace|unique|temp|temporary|unlogged|global|local|trusted|procedural|default|constraint|recursive))+ ', 'create ');
                END IF;
            ELSE
                IF pg_catalog.current_setting('replicator_ddl.xact', true) IS DISTINCT FROM my_xact::text THEN
                    DELETE FROM replicator_ddl.pending x WHERE x.pid = me AND x.xact < my_xact;
                    PERFORM pg_catalog.set_config('replicator_ddl.xact', my_xact::text, true);
                END IF;
                INSERT INTO replicator_ddl.pending (pid, key, n, xact) VALUES (me, qkey, 0, my_xact);
                -- Numbered without gaps: each lookup is by the whole key.
                BEGIN
                    INSERT INTO replicator_ddl.pending (pid, key, n, xact, stmt, words, fires, into_at)
                    SELECT me, qkey, pg_catalog.row_number() OVER (ORDER BY s.n), my_xact, s.stmt, s.words, s.fires, s.into_at
                      FROM replicator_ddl.split(q, pg_catalog.current_setting('standard_conforming_strings') = 'on') s
                     WHERE s.fires <> 'n';
                EXCEPTION WHEN OTHERS THEN
                    INSERT INTO replicator_ddl.queue (role, search_path, command_tag, objects, unreplicated, source_key)
                    VALUES (author, path, tg, objs, 'capture failed: could not cut the query string into statements: ' || SQLERRM || '; make the same change on the target',
                            me || '/' || qkey || '/failed/' || pg_catalog.clock_timestamp());
                    RETURN;
                END;
                kept := true;
            END IF;
        END IF;
        -- The next statement that can fire an event fired this one: a
        -- SELECT that may hold an INTO is passed over when it did not.
        prefix := pg_catalog.lower(pg_catalog.regexp_replace(tg, ' AS$', '')) || ' ';
        found_one := NOT kept;
        WHILE kept LOOP
            cur := cur + 1;
            -- The lookup also moves the cursor when this statement fired
            -- the event (ddl_command_end; sql_drop only looks).
            SELECT x.*, CASE WHEN ev = 'ddl_command_end' AND (x.fires = 'm' AND tg = 'SELECT INTO' OR x.fires = 'y' AND pg_catalog.starts_with(x.words || ' ', prefix))
                             THEN pg_catalog.set_config('replicator_ddl.at', qkey || '#' || x.n, true) END AS moved
              INTO p FROM replicator_ddl.pending x WHERE x.pid = me AND x.key = qkey AND x.n = cur;
            found_one := FOUND;
            EXIT WHEN NOT found_one OR p.fires = 'y' OR tg = 'SELECT INTO';
        END LOOP;
        matched := found_one AND CASE WHEN tg = 'SELECT INTO' THEN p.fires = 'm' ELSE pg_catalog.starts_with(p.words || ' ', prefix) END;
        IF NOT matched THEN
            IF p.words ~ '^(create|alter|drop) extension ' THEN
                RETURN; -- a command of the extension's script (PostgreSQL 15 and older show no context for them)
            END IF;
            IF ev = 'ddl_command_end' AND NOT excluded THEN
                INSERT INTO replicator_ddl.queue (role, search_path, command_tag, objects, unreplicated, source_key)
                VALUES (author, path, tg, objs,
                        pg_catalog.format('could not tell which statement of the query string ran %s (%s): make the same change on the target', tg, pg_catalog.left(pg_catalog.current_query(), 200)),
                        me || '/' || qkey || '/unmatched/' || pg_catalog.clock_timestamp())
                ON CONFLICT (source_key) DO NOTHING;
            END IF;
            RETURN;
        END IF;
        IF ev = 'sql_drop' THEN
            -- The same statement's ddl_command_end follows and queues it.
            UPDATE replicator_ddl.pending x SET dropped = objs WHERE x.pid = me AND x.key = qkey AND x.n = p.n;
            RETURN;
        END IF;
        IF excluded THEN
            RETURN;
        END IF;
        IF p.dropped IS NOT NULL THEN
            IF pg_catalog.cardinality(p.dropped) = 0 AND pg_catalog.cardinality(objs) = 0 THEN
                RETURN; -- it dropped temporary objects only
            END IF;
            objs := p.dropped || objs;
        ELSIF cmds > 0 AND pg_catalog.cardinality(objs) = 0 THEN
            RETURN; -- temporary objects only, or replicator's own
        END IF;

        v_stmt := p.stmt;
        IF tg = 'SELECT INTO' AND pg_catalog.cardinality(created) = 1 THEN
            v_stmt := replicator_ddl.select_into(v_stmt, p.into_at, created[1]);
        END IF;
        -- DETACH ... CONCURRENTLY (or FINALIZE) adds the partition's bound as
        -- a CHECK constraint; the target runs a plain DETACH, which does not.
        IF tg = 'ALTER TABLE' AND v_stmt ~* '\mdetach\s+partition\M' AND v_stmt ~* '\m(concurrently|finalize)\s*$' THEN
            BEGIN
                extra := replicator_ddl.detached_checks(p.stmt, path);
            EXCEPTION WHEN OTHERS THEN
                note := coalesce(note || E'\n', '') || 'could not read the check constraint DETACH ... CONCURRENTLY added: ' || SQLERRM;
            END;
        END IF;
        -- New tables are tracked; an ALTER TABLE may let one that could
        -- not join do so now (a key, a replica identity, SET LOGGED).
        IF tg NOT IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
           AND (tg <> 'ALTER TABLE' OR NOT EXISTS (SELECT 1 FROM replicator_ddl.created c WHERE c.relid = ANY (tables))) THEN
            noted := false; -- nothing to say of these tables (the usual case)
        END IF;
        FOREACH t IN ARRAY tables LOOP
            IF noted THEN
                s := replicator_ddl.track(t, tg IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO'));
                IF s IS NOT NULL THEN
                    note := coalesce(note || E'\n', '') || s;
                END IF;
            END IF;
            IF tg = 'ALTER TABLE' AND v_stmt ~* '\madd\M' AND v_stmt ~* '\m(default|identity|serial[248]?|bigserial|smallserial)\M' THEN
                nv := replicator_ddl.new_values(t, v_stmt);
                IF nv.note IS NOT NULL THEN
                    note := coalesce(note || E'\n', '') || nv.note;
                END IF;
                IF nv.expect IS NOT NULL THEN
                    expect := coalesce(expect, '[]') || nv.expect;
                END IF;
            END IF;
        END LOOP;
        -- A materialized view is filled from each side's own rows: the
        -- target checks that it came out the same.
        IF tg IN ('REFRESH MATERIALIZED VIEW', 'CREATE MATERIALIZED VIEW') THEN
            FOREACH t IN ARRAY views LOOP
                IF pg_catalog.has_table_privilege(t, 'SELECT') THEN
                    expect := coalesce(expect, '[]') || pg_catalog.jsonb_build_object('check', 'fingerprint', 'relation', t::text, 'value', replicator_ddl.fingerprint(t));
                ELSE
                    note := coalesce(note || E'\n', '') || pg_catalog.format('materialized view %s was filled from each side''s rows, and role %s may not read it to compare the two; fix: compare it yourself, or GRANT SELECT ON %s TO %s', t, current_user, t, current_user);
                END IF;
            END LOOP;
        END IF;
        INSERT INTO replicator_ddl.queue (role, search_path, command_tag, statements, objects, new_tables, note, expect, source_key)
        VALUES (author, path, tg, ARRAY[v_stmt] || extra, objs, created, note, expect,
                me || '/' || qkey || '#' || p.n || '/' || pg_catalog.clock_timestamp());
    END;
END
$f$;

-- capture is the event triggers' function. It must see the session's
-- search_path, so it cannot pin one: it holds nothing but one qualified call
-- with arguments of exact types (text), which no user's function, operator
-- or cast can intercept. SECURITY DEFINER: record() and the queue are the
-- sync role's alone.
CREATE OR REPLACE FUNCTION replicator_ddl.capture() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER AS $f$
BEGIN
    PERFORM replicator_ddl.record(pg_catalog.current_setting('search_path'), TG_EVENT, TG_TAG);
END
$f$;

REVOKE ALL ON ALL TABLES IN SCHEMA replicator_ddl FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA replicator_ddl FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA replicator_ddl FROM PUBLIC;
