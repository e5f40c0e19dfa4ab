-- Circuit breaker and kill switch.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_brk_bot LOGIN;
CREATE ROLE regress_brk_other LOGIN;
CREATE TABLE public.brk_items (id int PRIMARY KEY);
INSERT INTO public.brk_items SELECT generate_series(1, 10);
GRANT ALL ON public.brk_items TO regress_brk_bot, regress_brk_other;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_brk_bot');
SELECT agent_guard.register_agent('regress_brk_other');
RESET client_min_messages;
SELECT agent_guard.set_policy('TRUNCATE TABLE', 'public.brk_items', 'deny') > 0 AS ok;
SET agent_guard.breaker_threshold = 3;
SET agent_guard.breaker_window = 3600;

-- three refusals trip the breaker
SET SESSION AUTHORIZATION regress_brk_bot;
TRUNCATE public.brk_items;
TRUNCATE public.brk_items;
RESET SESSION AUTHORIZATION;
SELECT agent_guard.breaker_tripped('regress_brk_bot') AS tripped_after_two;
SET SESSION AUTHORIZATION regress_brk_bot;
TRUNCATE public.brk_items;
\echo :LAST_ERROR_SQLSTATE
-- now every change is refused, allowed or not, with its own SQLSTATE
INSERT INTO public.brk_items VALUES (11);
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE public.brk_new (a int);
\echo :LAST_ERROR_SQLSTATE
-- reads still work
SELECT count(*) FROM public.brk_items;
RESET SESSION AUTHORIZATION;
-- other agents are not affected
SET SESSION AUTHORIZATION regress_brk_other;
INSERT INTO public.brk_items VALUES (12);
RESET SESSION AUTHORIZATION;
SELECT agent, breaker_tripped, frozen FROM agent_guard.agent_activity ORDER BY agent::text;

-- an administrator resets it
SELECT agent_guard.reset_breaker('regress_brk_bot');
SET SESSION AUTHORIZATION regress_brk_bot;
INSERT INTO public.brk_items VALUES (13);
RESET SESSION AUTHORIZATION;
SELECT agent_guard.reset_breaker('regress_brk_bot');
SELECT agent_guard.reset_breaker('regress_brk_nosuch');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.reset_breaker(NULL);
\echo :LAST_ERROR_SQLSTATE

-- freeze: nothing at all runs, not even a read
SELECT agent_guard.freeze('regress_brk_bot') AS sessions_ended;
SET SESSION AUTHORIZATION regress_brk_bot;
SELECT count(*) FROM public.brk_items;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO public.brk_items VALUES (14);
\echo :LAST_ERROR_SQLSTATE
SELECT 1 AS no_table;
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE public.brk_frozen (a int);
\echo :LAST_ERROR_SQLSTATE
-- ending its session is all it can do
RESET SESSION AUTHORIZATION;
SELECT agent, mode, frozen FROM agent_guard.agents ORDER BY agent::text;
-- changing its mode keeps it frozen
SELECT agent_guard.set_agent_mode('regress_brk_bot', 'monitor');
SELECT agent, mode, frozen FROM agent_guard.agents ORDER BY agent::text;
SELECT agent_guard.unfreeze('regress_brk_bot');
SELECT agent_guard.unfreeze('regress_brk_bot');
\echo :LAST_ERROR_SQLSTATE
SET SESSION AUTHORIZATION regress_brk_bot;
SELECT count(*) FROM public.brk_items;
RESET SESSION AUTHORIZATION;
SELECT agent, mode, frozen FROM agent_guard.agents ORDER BY agent::text;

-- agents cannot reset, freeze or unfreeze
GRANT USAGE ON SCHEMA agent_guard TO regress_brk_other;
GRANT EXECUTE ON FUNCTION agent_guard.reset_breaker(regrole), agent_guard.unfreeze(regrole)
	TO regress_brk_other;
SET SESSION AUTHORIZATION regress_brk_other;
SELECT agent_guard.reset_breaker('regress_brk_bot');
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;

-- everything is in the audit trail
CREATE FUNCTION pg_temp.wait_audit(n int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..400 LOOP
		IF (SELECT count(*) FROM agent_guard.audit_log
			 WHERE decision IN ('breaker_tripped', 'breaker', 'frozen', 'agent_frozen', 'agent_unfrozen')
				OR command = 'RESET BREAKER') >= n THEN
			RETURN 'ok';
		END IF;
		PERFORM pg_sleep(0.025);
	END LOOP;
	RETURN 'timed out';
END $$;
SELECT pg_temp.wait_audit(11);
SELECT agent, command, decision, reason FROM agent_guard.audit_log
 WHERE decision IN ('breaker_tripped', 'breaker', 'frozen', 'agent_frozen', 'agent_unfrozen') OR command = 'RESET BREAKER'
 ORDER BY seq;

DROP TABLE public.brk_items;
REVOKE ALL ON SCHEMA agent_guard FROM regress_brk_other;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_guard FROM regress_brk_other;
DROP ROLE regress_brk_bot, regress_brk_other;
