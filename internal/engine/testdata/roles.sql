CREATE ROLE app_owner LOGIN PASSWORD 'owner-secret-pw' CREATEDB;
CREATE ROLE app_reader NOLOGIN;
CREATE ROLE "Weird ""Role""" LOGIN CONNECTION LIMIT 5 VALID UNTIL '2099-01-01';
CREATE ROLE app_admin SUPERUSER NOLOGIN;
GRANT app_reader TO app_owner;
ALTER ROLE app_owner SET statement_timeout = '5min';
COMMENT ON ROLE app_reader IS 'read-only access';
