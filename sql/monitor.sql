-- An agent in monitor mode: policy decisions are only recorded and the
-- statements run, but the built-in protections still refuse.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_monitor_bot LOGIN;
CREATE TABLE public.monitor_items (id int PRIMARY KEY, qty int NOT NULL);
CREATE TABLE public.monitor_scratch (id int);
CREATE TABLE public.monitor_log (id int);
INSERT INTO public.monitor_items SELECT g, g * 10 FROM generate_series(1, 5) g;
INSERT INTO public.monitor_scratch VALUES (1), (2), (3);
INSERT INTO public.monitor_log VALUES (1), (2);
ALTER TABLE public.monitor_scratch OWNER TO regress_monitor_bot;
ALTER TABLE public.monitor_log OWNER TO regress_monitor_bot;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.monitor_items TO regress_monitor_bot;
-- The agent may use agent_guard's functions as far as PostgreSQL is concerned.
GRANT USAGE ON SCHEMA agent_guard TO regress_monitor_bot;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA agent_guard TO regress_monitor_bot;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_monitor_bot', 'monitor');
RESET client_min_messages;
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;
-- A policy that would deny every INSERT by agents.
SELECT agent_guard.set_policy('INSERT', 'public.monitor_items', 'deny');

SET ROLE regress_monitor_bot;
-- What enforce mode would refuse runs: UPDATE and DELETE without WHERE,
-- a denied INSERT, TRUNCATE, GRANT and DROP TABLE.
UPDATE public.monitor_items SET qty = 0;
SELECT id, qty FROM public.monitor_items ORDER BY id;
INSERT INTO public.monitor_items VALUES (6, 60);
SELECT count(*) FROM public.monitor_items;
DELETE FROM public.monitor_items;
SELECT count(*) FROM public.monitor_items;
TRUNCATE public.monitor_log;
SELECT count(*) FROM public.monitor_log;
GRANT SELECT ON public.monitor_log TO PUBLIC;
SELECT has_table_privilege('public', 'public.monitor_log', 'SELECT') AS granted;
DROP TABLE public.monitor_scratch;
SELECT to_regclass('public.monitor_scratch') IS NULL AS dropped;

-- Built-in protections hold in monitor mode.
LOAD 'auto_explain';
\echo :LAST_ERROR_SQLSTATE
SET agent_guard.log_statement = off;
\echo :LAST_ERROR_SQLSTATE
RESET agent_guard.audit_reads;
\echo :LAST_ERROR_SQLSTATE
SELECT set_config('agent_guard.log_statement', 'off', false);
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET agent_guard.enabled = off;
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('ALL', '*', 'allow');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_agent_mode('regress_monitor_bot', 'monitor');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.unregister_agent('regress_monitor_bot');
\echo :LAST_ERROR_SQLSTATE
DROP EXTENSION agent_guard;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Nothing of that happened.
SHOW agent_guard.log_statement;
SHOW agent_guard.audit_reads;
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;
SELECT id, command, object_pattern, action FROM agent_guard.policies ORDER BY id;

SELECT agent_guard.unregister_agent('regress_monitor_bot');
DROP TABLE public.monitor_items, public.monitor_log;
REVOKE ALL ON SCHEMA agent_guard FROM regress_monitor_bot;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_guard FROM regress_monitor_bot;
DROP ROLE regress_monitor_bot;
