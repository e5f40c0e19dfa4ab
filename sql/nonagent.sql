-- Roles that are not agents get PostgreSQL's own behaviour, results and
-- errors, whether or not agents are registered in the cluster.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_nonagent_human LOGIN;
CREATE ROLE regress_nonagent_other LOGIN;
CREATE ROLE regress_nonagent_bot LOGIN;
SELECT count(*) AS agents FROM agent_guard.agents;

-- The same script runs twice: before and after an agent is registered.
CREATE FUNCTION pg_temp.nonagent_setup() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	DROP TABLE IF EXISTS public.nonagent_a, public.nonagent_b, public.nonagent_c,
		public.nonagent_parent, public.nonagent_child, public.nonagent_foreign CASCADE;
	CREATE TABLE public.nonagent_a (id int PRIMARY KEY, qty int, extra text);
	CREATE TABLE public.nonagent_b (id int);
	CREATE TABLE public.nonagent_c (id int);
	CREATE TABLE public.nonagent_parent (id int PRIMARY KEY);
	CREATE TABLE public.nonagent_child (id int REFERENCES public.nonagent_parent);
	CREATE TABLE public.nonagent_foreign (id int);
	INSERT INTO public.nonagent_a SELECT g, g, 'x' FROM generate_series(1, 5) g;
	INSERT INTO public.nonagent_b VALUES (1), (2);
	INSERT INTO public.nonagent_c VALUES (1), (2);
	INSERT INTO public.nonagent_parent VALUES (1), (2);
	INSERT INTO public.nonagent_child VALUES (1), (2);
	INSERT INTO public.nonagent_foreign VALUES (1);
	ALTER TABLE public.nonagent_a OWNER TO regress_nonagent_human;
	ALTER TABLE public.nonagent_b OWNER TO regress_nonagent_human;
	ALTER TABLE public.nonagent_c OWNER TO regress_nonagent_human;
	ALTER TABLE public.nonagent_parent OWNER TO regress_nonagent_human;
	ALTER TABLE public.nonagent_child OWNER TO regress_nonagent_human;
	ALTER TABLE public.nonagent_foreign OWNER TO regress_nonagent_other;
	CREATE VIEW public.nonagent_v AS SELECT id FROM public.nonagent_c;
	ALTER VIEW public.nonagent_v OWNER TO regress_nonagent_human;
END $$;

SET client_min_messages = warning;
SELECT pg_temp.nonagent_setup();
RESET client_min_messages;
SET ROLE regress_nonagent_human;
UPDATE public.nonagent_a SET qty = 0;
SELECT sum(qty) FROM public.nonagent_a;
DELETE FROM public.nonagent_a WHERE id > 3;
DELETE FROM public.nonagent_a;
SELECT count(*) FROM public.nonagent_a;
ALTER TABLE public.nonagent_a DROP COLUMN extra;
TRUNCATE public.nonagent_b;
SELECT count(*) FROM public.nonagent_b;
TRUNCATE public.nonagent_parent;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE public.nonagent_parent CASCADE;
SELECT count(*) FROM public.nonagent_child;
DROP TABLE public.nonagent_c;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE public.nonagent_c CASCADE;
DROP TABLE public.nonagent_b;
DROP TABLE public.nonagent_foreign;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE public.nonagent_missing;
\echo :LAST_ERROR_SQLSTATE
SET agent_guard.log_statement = off;
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('ALL', '*', 'allow');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM agent_guard.policies;
\echo :LAST_ERROR_SQLSTATE
SELECT relname FROM pg_class WHERE relname LIKE 'nonagent\_%' ORDER BY relname;
RESET ROLE;

-- Register an agent (not a role the human belongs to) and run it all again.
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_nonagent_bot');
RESET client_min_messages;
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;
SET client_min_messages = warning;
SELECT pg_temp.nonagent_setup();
RESET client_min_messages;
SET ROLE regress_nonagent_human;
UPDATE public.nonagent_a SET qty = 0;
SELECT sum(qty) FROM public.nonagent_a;
DELETE FROM public.nonagent_a WHERE id > 3;
DELETE FROM public.nonagent_a;
SELECT count(*) FROM public.nonagent_a;
ALTER TABLE public.nonagent_a DROP COLUMN extra;
TRUNCATE public.nonagent_b;
SELECT count(*) FROM public.nonagent_b;
TRUNCATE public.nonagent_parent;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE public.nonagent_parent CASCADE;
SELECT count(*) FROM public.nonagent_child;
DROP TABLE public.nonagent_c;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE public.nonagent_c CASCADE;
DROP TABLE public.nonagent_b;
DROP TABLE public.nonagent_foreign;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE public.nonagent_missing;
\echo :LAST_ERROR_SQLSTATE
SET agent_guard.log_statement = off;
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('ALL', '*', 'allow');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM agent_guard.policies;
\echo :LAST_ERROR_SQLSTATE
SELECT relname FROM pg_class WHERE relname LIKE 'nonagent\_%' ORDER BY relname;
RESET ROLE;

-- A superuser that is not an agent may change agent_guard settings as usual,
-- and a role that is not an agent may administer policies once granted to.
SET agent_guard.log_statement = redacted;
SHOW agent_guard.log_statement;
RESET agent_guard.log_statement;
GRANT USAGE ON SCHEMA agent_guard TO regress_nonagent_human;
GRANT EXECUTE ON FUNCTION agent_guard.set_policy(text, text, text, regrole, bigint, int, text)
	TO regress_nonagent_human;
SET ROLE regress_nonagent_human;
SELECT agent_guard.set_policy('DROP TABLE', 'public.nonagent_*', 'deny');
RESET ROLE;
SELECT id, command, object_pattern, action FROM agent_guard.policies ORDER BY id;
REVOKE ALL ON FUNCTION agent_guard.set_policy(text, text, text, regrole, bigint, int, text)
	FROM regress_nonagent_human;
REVOKE ALL ON SCHEMA agent_guard FROM regress_nonagent_human;

SELECT agent_guard.unregister_agent('regress_nonagent_bot');
-- Policy 7 binds agents only.
DROP TABLE public.nonagent_a, public.nonagent_parent, public.nonagent_child,
	public.nonagent_foreign;
DROP ROLE regress_nonagent_human, regress_nonagent_other, regress_nonagent_bot;
