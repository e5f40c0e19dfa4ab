-- Statements that cannot run inside a transaction block are approved for
-- one retry: the agent's next identical statement runs, once.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_retry_bot LOGIN;
CREATE ROLE regress_retry_carol LOGIN;
CREATE TABLE public.retry_items (id int PRIMARY KEY);
INSERT INTO public.retry_items SELECT generate_series(1, 10);
ALTER TABLE public.retry_items OWNER TO regress_retry_bot;
GRANT USAGE ON SCHEMA agent_guard TO regress_retry_carol;
GRANT EXECUTE ON FUNCTION agent_guard.approve_pending(bigint, text) TO regress_retry_carol;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_retry_bot');
RESET client_min_messages;
SELECT agent_guard.set_policy('VACUUM', 'public.retry_items', 'require_approval') > 0 AS ok;

SET SESSION AUTHORIZATION regress_retry_bot;
VACUUM public.retry_items;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT id, command, statement, needs_retry, status FROM agent_guard.requests;

SET SESSION AUTHORIZATION regress_retry_carol;
SELECT agent_guard.approve_pending(1);
RESET SESSION AUTHORIZATION;
SELECT id, status, retry_until > now() AS retry_open FROM agent_guard.requests;

-- a different statement does not use the approval
SET SESSION AUTHORIZATION regress_retry_bot;
VACUUM (VERBOSE false) public.retry_items;
\echo :LAST_ERROR_SQLSTATE
-- the same statement (whitespace aside) runs once
VACUUM   public.retry_items ;
-- and only once
VACUUM public.retry_items;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT id, statement, status FROM agent_guard.requests ORDER BY id;

-- an approval nobody used runs out
SET SESSION AUTHORIZATION regress_retry_carol;
SELECT agent_guard.approve_pending(2);
RESET SESSION AUTHORIZATION;
UPDATE agent_guard.requests SET retry_until = now() - interval '1 second' WHERE id = 2;
SET SESSION AUTHORIZATION regress_retry_bot;
VACUUM (VERBOSE false) public.retry_items;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT id, status FROM agent_guard.requests ORDER BY id;

DROP TABLE public.retry_items;
REVOKE ALL ON SCHEMA agent_guard FROM regress_retry_carol;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_guard FROM regress_retry_carol;
DROP ROLE regress_retry_bot, regress_retry_carol;
