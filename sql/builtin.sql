-- Built-in protections: whatever the policies allow and whatever PostgreSQL
-- privileges it holds, an agent never changes agent_guard, its settings or
-- its extension, never calls its administration functions, never loads a
-- library and never runs ALTER SYSTEM.  It may ask evaluate() about itself.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
-- many refusals in a row: keep the circuit breaker out of this test
SET agent_guard.breaker_threshold = 1000;
CREATE ROLE regress_builtin_bot LOGIN;
CREATE ROLE regress_builtin_bot2 LOGIN;
CREATE ROLE regress_builtin_human LOGIN;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_builtin_bot');
SELECT agent_guard.register_agent('regress_builtin_bot2');
RESET client_min_messages;

-- Policies that allow everything, for every agent and for this one.
SELECT agent_guard.set_policy('ALL', '*', 'allow', 'regress_builtin_bot');
SELECT agent_guard.set_policy('ADMIN', '*', 'allow');
SELECT agent_guard.set_policy('ADMIN', '*', 'allow', 'regress_builtin_bot');
SELECT agent_guard.set_policy('DESTRUCTIVE', '*', 'allow');
SELECT agent_guard.set_policy('DESTRUCTIVE', '*', 'allow', 'regress_builtin_bot');
SELECT agent_guard.set_policy('DDL', 'agent_guard.*', 'allow', 'regress_builtin_bot');
SELECT agent_guard.set_policy('WRITE', 'agent_guard.policies', 'allow', 'regress_builtin_bot');
SELECT agent_guard.set_policy('EXECUTE', 'agent_guard.*', 'allow', 'regress_builtin_bot');
SELECT agent_guard.set_policy('SET', 'agent_guard.*', 'allow', 'regress_builtin_bot');
SELECT agent_guard.set_policy('LOAD', '*', 'allow', 'regress_builtin_bot');
SELECT agent_guard.set_policy('ALTER SYSTEM', '*', 'allow', 'regress_builtin_bot');
SELECT agent_guard.set_policy('DROP EXTENSION', 'agent_guard', 'allow', 'regress_builtin_bot');
SELECT agent_guard.set_policy('ALTER EXTENSION', 'agent_guard', 'allow', 'regress_builtin_bot');
SELECT agent_guard.set_policy('SECURITY LABEL', '*', 'allow', 'regress_builtin_bot');

-- PostgreSQL privileges on everything in agent_guard.
GRANT USAGE, CREATE ON SCHEMA agent_guard TO regress_builtin_bot;
GRANT ALL ON ALL TABLES IN SCHEMA agent_guard TO regress_builtin_bot;
GRANT ALL ON ALL SEQUENCES IN SCHEMA agent_guard TO regress_builtin_bot;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA agent_guard TO regress_builtin_bot;
SELECT count(*) AS policies FROM agent_guard.policies;
-- Session values set by the login before it switches to the agent role.
SET agent_guard.audit_reads = on;
SET agent_guard.log_statement = redacted;

SET ROLE regress_builtin_bot;

-- The policy table.
INSERT INTO agent_guard.policies (command, object_pattern, action) VALUES ('ALL', '*', 'allow');
\echo :LAST_ERROR_SQLSTATE
UPDATE agent_guard.policies SET action = 'allow' WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
UPDATE agent_guard.policies SET enabled = false;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM agent_guard.policies WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM agent_guard.policies;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE agent_guard.policies;
\echo :LAST_ERROR_SQLSTATE
WITH gone AS (DELETE FROM agent_guard.policies WHERE action = 'deny' RETURNING id)
SELECT count(*) FROM gone;
\echo :LAST_ERROR_SQLSTATE

-- Administration functions, granted EXECUTE and USAGE.
SELECT agent_guard.set_policy('ALL', '*', 'allow');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM agent_guard.drop_policy(2);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.register_agent('regress_builtin_human');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.unregister_agent('regress_builtin_bot');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_agent_mode('regress_builtin_bot', 'monitor');
\echo :LAST_ERROR_SQLSTATE
DO $$ BEGIN PERFORM agent_guard.drop_policy(2); END $$;
\echo :LAST_ERROR_SQLSTATE
DO $$ DECLARE id bigint; BEGIN id := agent_guard.set_policy('ALL', '*', 'allow'); END $$;
\echo :LAST_ERROR_SQLSTATE

-- Settings.
SET agent_guard.log_statement = off;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SET LOCAL agent_guard.log_statement = off;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT set_config('agent_guard.log_statement', 'off', false);
\echo :LAST_ERROR_SQLSTATE
RESET agent_guard.audit_reads;
\echo :LAST_ERROR_SQLSTATE
SET agent_guard.enabled = off;
\echo :LAST_ERROR_SQLSTATE
-- RESET ALL resets the agent's own settings, never agent_guard's.
RESET ALL;
\echo :ERROR
SHOW agent_guard.audit_reads;
SHOW agent_guard.log_statement;

-- Loading code, server configuration, the extension.
LOAD 'auto_explain';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET agent_guard.enabled = off;
\echo :LAST_ERROR_SQLSTATE
DROP EXTENSION agent_guard;
\echo :LAST_ERROR_SQLSTATE
ALTER EXTENSION agent_guard UPDATE;
\echo :LAST_ERROR_SQLSTATE
SECURITY LABEL FOR agent_guard ON ROLE regress_builtin_bot IS NULL;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- As a superuser, PostgreSQL's privilege checks would let all of this through:
-- the refusals below are agent_guard's own.
ALTER ROLE regress_builtin_bot SUPERUSER;
SET ROLE regress_builtin_bot;
ALTER TABLE agent_guard.policies DISABLE TRIGGER policies_changed;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE agent_guard.policies DROP CONSTRAINT policies_action_check;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE agent_guard.policies;
\echo :LAST_ERROR_SQLSTATE
DROP VIEW agent_guard.agents;
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE agent_guard.planted (id int);
\echo :LAST_ERROR_SQLSTATE
CREATE OR REPLACE FUNCTION agent_guard.drop_policy(policy_id bigint) RETURNS void
	LANGUAGE sql AS 'SELECT';
\echo :LAST_ERROR_SQLSTATE
ALTER FUNCTION agent_guard.set_policy(text, text, text, regrole, bigint, int, text) OWNER TO regress_builtin_bot;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO agent_guard.policies (command, object_pattern, action) VALUES ('ALL', '*', 'allow');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('ALL', '*', 'allow');
\echo :LAST_ERROR_SQLSTATE
SET agent_guard.log_statement = off;
\echo :LAST_ERROR_SQLSTATE
SELECT set_config('agent_guard.' || 'log_statement', 'off', false);
\echo :LAST_ERROR_SQLSTATE
SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'agent_guard.log_statement';
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_builtin_bot SET agent_guard.log_statement = off;
\echo :LAST_ERROR_SQLSTATE
LOAD 'auto_explain';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET agent_guard.enabled = off;
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM RESET ALL;
\echo :LAST_ERROR_SQLSTATE
DROP EXTENSION agent_guard;
\echo :LAST_ERROR_SQLSTATE
ALTER EXTENSION agent_guard UPDATE;
\echo :LAST_ERROR_SQLSTATE
SECURITY LABEL FOR agent_guard ON ROLE regress_builtin_bot IS NULL;
\echo :LAST_ERROR_SQLSTATE
SECURITY LABEL FOR agent_guard ON ROLE regress_builtin_bot IS 'monitor';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
ALTER ROLE regress_builtin_bot NOSUPERUSER;

-- Everything is as it was.
SHOW agent_guard.log_statement;
SHOW agent_guard.audit_reads;
RESET agent_guard.log_statement;
RESET agent_guard.audit_reads;
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;
SELECT extversion FROM pg_extension WHERE extname = 'agent_guard';
SELECT id, agent, command, object_pattern, action, enabled
  FROM agent_guard.policies ORDER BY id;
SELECT count(*) AS planted FROM pg_class WHERE relname = 'planted';
SELECT tgenabled FROM pg_trigger WHERE tgname = 'policies_changed';
SELECT setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
 WHERE r.rolname = 'regress_builtin_bot';

-- evaluate() answers an agent about its own role, and only about it.
SET ROLE regress_builtin_bot;
SELECT * FROM agent_guard.evaluate('DROP TABLE agent_guard.policies', 'regress_builtin_bot');
SELECT command, object, action FROM agent_guard.evaluate('LOAD ''auto_explain''', current_user::regrole);
SELECT * FROM agent_guard.evaluate('DROP TABLE agent_guard.policies', 'regress_builtin_bot2');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM agent_guard.evaluate('DROP TABLE agent_guard.policies', 'regress_builtin_human');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

REVOKE ALL ON SCHEMA agent_guard FROM regress_builtin_bot;
REVOKE ALL ON ALL TABLES IN SCHEMA agent_guard FROM regress_builtin_bot;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA agent_guard FROM regress_builtin_bot;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_guard FROM regress_builtin_bot;
SELECT agent_guard.unregister_agent('regress_builtin_bot');
SELECT agent_guard.unregister_agent('regress_builtin_bot2');
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
DROP ROLE regress_builtin_bot, regress_builtin_bot2, regress_builtin_human;
