-- The user objects of the current database: every object created after
-- initdb (OID at or past FirstNormalObjectId, 16384), not part of an
-- extension (the extension stands for its members), not made by the system
-- for another object (array and multirange types, a table's row type, its
-- TOAST table), outside pg_catalog, information_schema and temporary schemas.
-- Indexes, constraints, triggers, rules and policies belong to their table and
-- are not listed: the table is. Each row: kind, schema (NULL for objects
-- without one), name, identity (pg_identify_object's), and for schemas
-- whether they are empty of such objects.
WITH objs(classid, objid) AS (
          SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, oid FROM pg_catalog.pg_namespace
UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, oid FROM pg_catalog.pg_class WHERE relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,S,f,c}'::"char"[])
UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, oid FROM pg_catalog.pg_proc
UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid FROM pg_catalog.pg_type t
          WHERE t.typrelid OPERATOR(pg_catalog.=) 0
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray OPERATOR(pg_catalog.=) t.oid)
UNION ALL SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, oid FROM pg_catalog.pg_collation
UNION ALL SELECT 'pg_catalog.pg_conversion'::pg_catalog.regclass, oid FROM pg_catalog.pg_conversion
UNION ALL SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, oid FROM pg_catalog.pg_operator
UNION ALL SELECT 'pg_catalog.pg_opclass'::pg_catalog.regclass, oid FROM pg_catalog.pg_opclass
UNION ALL SELECT 'pg_catalog.pg_opfamily'::pg_catalog.regclass, oid FROM pg_catalog.pg_opfamily
UNION ALL SELECT 'pg_catalog.pg_am'::pg_catalog.regclass, oid FROM pg_catalog.pg_am
UNION ALL SELECT 'pg_catalog.pg_cast'::pg_catalog.regclass, oid FROM pg_catalog.pg_cast
UNION ALL SELECT 'pg_catalog.pg_language'::pg_catalog.regclass, oid FROM pg_catalog.pg_language
UNION ALL SELECT 'pg_catalog.pg_extension'::pg_catalog.regclass, oid FROM pg_catalog.pg_extension
UNION ALL SELECT 'pg_catalog.pg_ts_config'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_config
UNION ALL SELECT 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_dict
UNION ALL SELECT 'pg_catalog.pg_ts_parser'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_parser
UNION ALL SELECT 'pg_catalog.pg_ts_template'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_template
UNION ALL SELECT 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass, oid FROM pg_catalog.pg_foreign_data_wrapper
UNION ALL SELECT 'pg_catalog.pg_foreign_server'::pg_catalog.regclass, oid FROM pg_catalog.pg_foreign_server
UNION ALL SELECT 'pg_catalog.pg_event_trigger'::pg_catalog.regclass, oid FROM pg_catalog.pg_event_trigger
UNION ALL SELECT 'pg_catalog.pg_publication'::pg_catalog.regclass, oid FROM pg_catalog.pg_publication
UNION ALL SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, oid FROM pg_catalog.pg_statistic_ext
UNION ALL SELECT 'pg_catalog.pg_transform'::pg_catalog.regclass, oid FROM pg_catalog.pg_transform
UNION ALL SELECT 'pg_catalog.pg_default_acl'::pg_catalog.regclass, oid FROM pg_catalog.pg_default_acl
UNION ALL SELECT 'pg_catalog.pg_largeobject'::pg_catalog.regclass, oid FROM pg_catalog.pg_largeobject_metadata
UNION ALL SELECT 'pg_catalog.pg_subscription'::pg_catalog.regclass, oid FROM pg_catalog.pg_subscription
          WHERE subdbid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
), user_objs AS (
  SELECT o.classid, o.objid, i.type, i.schema, i.name, i.identity
  FROM objs o, LATERAL pg_catalog.pg_identify_object(o.classid, o.objid, 0) i
  WHERE o.objid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid OPERATOR(pg_catalog.=) o.classid AND d.objid OPERATOR(pg_catalog.=) o.objid
                      AND d.deptype OPERATOR(pg_catalog.=) ANY ('{e,i}'::"char"[]))
    AND (i.schema IS NULL OR NOT (i.schema OPERATOR(pg_catalog.=) ANY ('{pg_catalog,information_schema,pg_toast}'::text[])
                                  OR i.schema OPERATOR(pg_catalog.~) '^pg_(toast_)?temp_'))
    AND NOT (i.type OPERATOR(pg_catalog.=) 'schema'
             AND (i.name OPERATOR(pg_catalog.=) ANY ('{pg_catalog,information_schema,pg_toast}'::text[])
                  OR i.name OPERATOR(pg_catalog.~) '^pg_(toast_)?temp_'))
)
SELECT u.type, u.schema,
       -- pg_identify_object quotes names; schemas and extensions are
       -- compared with the source's by their plain names.
       COALESCE((SELECT n.nspname FROM pg_catalog.pg_namespace n
                 WHERE u.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass AND n.oid OPERATOR(pg_catalog.=) u.objid),
                (SELECT e.extname FROM pg_catalog.pg_extension e
                 WHERE u.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass AND e.oid OPERATOR(pg_catalog.=) u.objid),
                u.name),
       u.identity,
       (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE u.type OPERATOR(pg_catalog.=) 'extension' AND e.oid OPERATOR(pg_catalog.=) u.objid),
       (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
        WHERE u.type OPERATOR(pg_catalog.=) 'extension' AND e.oid OPERATOR(pg_catalog.=) u.objid)
FROM user_objs u
ORDER BY u.type OPERATOR(pg_catalog.<>) 'schema', u.schema, u.identity
