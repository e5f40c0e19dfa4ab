-- EXECUTE policies: an administrator can deny functions to agents, wherever
-- the agent's statement calls them; humans call them as usual.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_execute_policy_bot LOGIN;
CREATE ROLE regress_execute_policy_human LOGIN;
CREATE TABLE public.execute_policy_t (id int);
INSERT INTO public.execute_policy_t VALUES (0);
GRANT SELECT ON public.execute_policy_t
	TO regress_execute_policy_bot, regress_execute_policy_human;
GRANT CREATE ON SCHEMA public TO regress_execute_policy_bot;
-- Large objects owned by the agent: PostgreSQL would let it unlink them.
SELECT lo_create(4242001) = 4242001 AS created, lo_create(4242002) = 4242002 AS created,
	lo_create(4242003) = 4242003 AS created;
ALTER LARGE OBJECT 4242001 OWNER TO regress_execute_policy_bot;
ALTER LARGE OBJECT 4242002 OWNER TO regress_execute_policy_bot;
ALTER LARGE OBJECT 4242003 OWNER TO regress_execute_policy_bot;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_execute_policy_bot');
RESET client_min_messages;

CREATE FUNCTION public.execute_policy_kill(pid int) RETURNS boolean
	LANGUAGE plpgsql AS $$
BEGIN
	RETURN pg_terminate_backend(pid);
END $$;
CREATE FUNCTION public.execute_policy_kill_perform(pid int) RETURNS void
	LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_terminate_backend(pid);
END $$;
CREATE FUNCTION public.execute_policy_unlink(lo oid) RETURNS int
	LANGUAGE plpgsql AS $$
DECLARE
	result int;
BEGIN
	result := lo_unlink(lo);
	RETURN result;
END $$;

SELECT agent_guard.set_policy('EXECUTE', 'pg_catalog.pg_terminate_backend', 'deny');
SELECT agent_guard.set_policy('EXECUTE', 'pg_catalog.lo_unlink', 'deny');

SET ROLE regress_execute_policy_bot;
-- PID 0 is no backend: any refusal below is agent_guard's.
SELECT pg_terminate_backend(0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_terminate_backend(0);
\echo :LAST_ERROR_SQLSTATE
-- In a WHERE clause and in subqueries.
SELECT id FROM public.execute_policy_t WHERE pg_terminate_backend(id);
\echo :LAST_ERROR_SQLSTATE
SELECT (SELECT pg_terminate_backend(0)) AS killed;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM public.execute_policy_t
 WHERE id IN (SELECT id FROM public.execute_policy_t WHERE pg_terminate_backend(id));
\echo :LAST_ERROR_SQLSTATE
-- Inside plpgsql: a plain expression (RETURN), a query (PERFORM), a DO block.
SELECT public.execute_policy_kill(0);
\echo :LAST_ERROR_SQLSTATE
SELECT public.execute_policy_kill_perform(0);
\echo :LAST_ERROR_SQLSTATE
DO $$ BEGIN PERFORM pg_terminate_backend(0); END $$;
\echo :LAST_ERROR_SQLSTATE
-- Other functions are not affected.
SELECT lower('ABC'), pg_backend_pid() > 0 AS has_pid;

-- lo_unlink: directly, in a plpgsql assignment, and from a CHECK constraint
-- or a domain constraint the agent wrote itself.
SELECT lo_unlink(4242001);
\echo :LAST_ERROR_SQLSTATE
SELECT public.execute_policy_unlink(4242001);
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE public.execute_policy_check (lo oid CHECK (lo_unlink(lo) = 1));
INSERT INTO public.execute_policy_check VALUES (4242002);
\echo :LAST_ERROR_SQLSTATE
CREATE DOMAIN public.execute_policy_dom AS oid CHECK (lo_unlink(VALUE) = 1);
SELECT 4242003::oid::public.execute_policy_dom;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP DOMAIN public.execute_policy_dom;
SELECT oid::bigint AS large_object FROM pg_largeobject_metadata
 WHERE oid BETWEEN 4242001 AND 4242003 ORDER BY 1;
SELECT count(*) AS checked_rows FROM public.execute_policy_check;

-- A human calls the same functions.
SET ROLE regress_execute_policy_human;
SELECT pg_terminate_backend(0);
SELECT id FROM public.execute_policy_t WHERE pg_terminate_backend(id);
SELECT public.execute_policy_kill(0);
RESET ROLE;
ALTER LARGE OBJECT 4242001 OWNER TO regress_execute_policy_human;
ALTER LARGE OBJECT 4242002 OWNER TO regress_execute_policy_human;
ALTER LARGE OBJECT 4242003 OWNER TO regress_execute_policy_human;
SET ROLE regress_execute_policy_human;
SELECT lo_unlink(4242001);
SELECT public.execute_policy_unlink(4242002);
SELECT public.execute_policy_unlink(4242003);
RESET ROLE;
SELECT count(*) AS large_objects FROM pg_largeobject_metadata
 WHERE oid BETWEEN 4242001 AND 4242003;

SELECT agent_guard.unregister_agent('regress_execute_policy_bot');
DROP FUNCTION public.execute_policy_kill(int), public.execute_policy_kill_perform(int),
	public.execute_policy_unlink(oid);
DROP TABLE public.execute_policy_t, public.execute_policy_check;
REVOKE CREATE ON SCHEMA public FROM regress_execute_policy_bot;
DROP ROLE regress_execute_policy_bot, regress_execute_policy_human;
