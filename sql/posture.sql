-- agent_posture() lists each risky attribute of a role with the SQL that
-- fixes it; register_agent() warns about each one.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_posture_safe LOGIN;
CREATE ROLE regress_posture_risky LOGIN CREATEROLE CREATEDB BYPASSRLS REPLICATION;
CREATE ROLE regress_posture_owner;
GRANT pg_write_server_files, pg_signal_backend TO regress_posture_risky;
CREATE SCHEMA posture_owned AUTHORIZATION regress_posture_risky;
CREATE TABLE public.posture_mine (a int);
ALTER TABLE public.posture_mine OWNER TO regress_posture_risky;
CREATE TABLE public.posture_theirs (a int);
GRANT TRUNCATE ON public.posture_theirs TO regress_posture_owner;
GRANT regress_posture_owner TO regress_posture_risky;

-- a least-privilege role has nothing to report
SELECT * FROM agent_guard.agent_posture('regress_posture_safe');
SELECT agent_guard.register_agent('regress_posture_safe');

SELECT attribute, severity, fix_sql
  FROM agent_guard.agent_posture('regress_posture_risky')
 ORDER BY attribute;

-- registering warns once per finding
SELECT agent_guard.register_agent('regress_posture_risky');

-- the fixes work
ALTER ROLE regress_posture_risky NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION;
REVOKE pg_write_server_files FROM regress_posture_risky;
REVOKE pg_signal_backend FROM regress_posture_risky;
ALTER SCHEMA posture_owned OWNER TO regress_posture_owner;
ALTER TABLE public.posture_mine OWNER TO regress_posture_owner;
REVOKE TRUNCATE ON public.posture_theirs FROM regress_posture_owner;
-- membership in the new owner is itself a finding
SELECT attribute, fix_sql FROM agent_guard.agent_posture('regress_posture_risky');
REVOKE regress_posture_owner FROM regress_posture_risky;
SELECT attribute FROM agent_guard.agent_posture('regress_posture_risky');

-- superuser is the worst finding
ALTER ROLE regress_posture_safe SUPERUSER;
SELECT attribute, severity, fix_sql FROM agent_guard.agent_posture('regress_posture_safe');
ALTER ROLE regress_posture_safe NOSUPERUSER;

DROP TABLE public.posture_mine, public.posture_theirs;
DROP SCHEMA posture_owned;
DROP ROLE regress_posture_safe;
DROP ROLE regress_posture_risky;
DROP ROLE regress_posture_owner;
