-- wait_for_decision(): an agent waits for the human in one call.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_wait_bot LOGIN;
CREATE ROLE regress_wait_other LOGIN;
CREATE ROLE regress_wait_carol LOGIN;
CREATE TABLE public.wait_items (id int);
INSERT INTO public.wait_items SELECT generate_series(1, 5);
GRANT ALL ON public.wait_items TO regress_wait_bot, regress_wait_other;
GRANT USAGE ON SCHEMA agent_guard TO regress_wait_bot, regress_wait_other, regress_wait_carol;
GRANT EXECUTE ON FUNCTION agent_guard.wait_for_decision(bigint, interval)
	TO regress_wait_bot, regress_wait_other;
GRANT EXECUTE ON FUNCTION agent_guard.approve_pending(bigint, text),
	agent_guard.reject_pending(bigint, text) TO regress_wait_carol;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_wait_bot');
SELECT agent_guard.register_agent('regress_wait_other');
RESET client_min_messages;

SET SESSION AUTHORIZATION regress_wait_bot;
DELETE FROM public.wait_items;
TRUNCATE public.wait_items;
-- nobody decided yet: the timeout passes and it is still pending
SELECT * FROM agent_guard.wait_for_decision(1, '50 milliseconds');
RESET SESSION AUTHORIZATION;

SET SESSION AUTHORIZATION regress_wait_carol;
SELECT agent_guard.approve_pending(1);
SELECT agent_guard.reject_pending(2, 'not tonight');
RESET SESSION AUTHORIZATION;

-- decided: the answer comes at once
SET SESSION AUTHORIZATION regress_wait_bot;
SELECT * FROM agent_guard.wait_for_decision(1);
SELECT * FROM agent_guard.wait_for_decision(2, '1 second');
-- waiting is interruptible
DELETE FROM public.wait_items WHERE id > 0 OR true;
SET statement_timeout = '100ms';
SELECT * FROM agent_guard.wait_for_decision(3, '1 minute');
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
-- bad input
SELECT * FROM agent_guard.wait_for_decision(99);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM agent_guard.wait_for_decision(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM agent_guard.wait_for_decision(3, '-1 second');
\echo :LAST_ERROR_SQLSTATE
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM agent_guard.wait_for_decision(3, '1 second');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET SESSION AUTHORIZATION;

-- another agent may not wait on (and so learn about) this agent's requests
SET SESSION AUTHORIZATION regress_wait_other;
SELECT * FROM agent_guard.wait_for_decision(1, '10 milliseconds');
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
-- expired requests report so
UPDATE agent_guard.requests SET expires_at = now() WHERE id = 3;
SELECT * FROM agent_guard.wait_for_decision(3, '1 second');

DROP TABLE public.wait_items;
REVOKE ALL ON SCHEMA agent_guard FROM regress_wait_bot, regress_wait_other, regress_wait_carol;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_guard FROM regress_wait_bot, regress_wait_other,
	regress_wait_carol;
DROP ROLE regress_wait_bot, regress_wait_other, regress_wait_carol;
