-- The approval queue: a parked statement waits, an approver runs it as
-- the agent (exactly once), or rejects it; requests expire.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_approve_bot LOGIN;
CREATE ROLE regress_approve_alice LOGIN;		-- a human who may also act as the bot
CREATE ROLE regress_approve_carol LOGIN;		-- an approver
CREATE ROLE regress_approve_dave LOGIN;		-- another approver
CREATE ROLE regress_approve_root LOGIN SUPERUSER;	-- a superuser, not an agent
GRANT regress_approve_bot TO regress_approve_alice;
CREATE TABLE public.approve_logs (id int PRIMARY KEY, day int);
INSERT INTO public.approve_logs SELECT g, g % 10 FROM generate_series(1, 40) g;
CREATE TABLE public.approve_secret (id int);
INSERT INTO public.approve_secret VALUES (1), (2);
GRANT ALL ON public.approve_logs TO regress_approve_bot;
GRANT USAGE ON SCHEMA agent_guard TO regress_approve_carol, regress_approve_dave,
	regress_approve_alice, regress_approve_bot;
GRANT EXECUTE ON FUNCTION agent_guard.approve_pending(bigint, text),
	agent_guard.reject_pending(bigint, text)
	TO regress_approve_carol, regress_approve_dave, regress_approve_alice, regress_approve_bot;
GRANT SELECT ON agent_guard.pending_requests TO regress_approve_carol, regress_approve_dave;
GRANT SELECT ON agent_guard.my_requests TO regress_approve_bot;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_approve_bot');
RESET client_min_messages;
-- deleting by day needs approval, and two approvers for day 9
SELECT agent_guard.set_policy('DELETE', 'public.approve_logs', 'require_approval') > 0 AS ok;

-- 1. park, then approve: the statement runs as the agent, once
SET SESSION AUTHORIZATION regress_approve_bot;
DELETE FROM public.approve_logs WHERE day = 1;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM public.approve_logs;
SELECT id, command, objects, statement, status FROM agent_guard.my_requests ORDER BY id;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_approve_carol;
SELECT id, agent, command, objects, statement, approvals_required, approvals
  FROM agent_guard.pending_requests;
SELECT estimated_rows > 0 AS has_estimate, policy_command, policy_pattern, reason,
	   expires_at > now() AS open
  FROM agent_guard.pending_requests;
SELECT agent_guard.approve_pending(1, 'old logs, fine');
-- approving again, or rejecting now, changes nothing
SELECT agent_guard.approve_pending(1);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.reject_pending(1);
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.approve_logs;
SELECT id, status, rows, error, decided_by FROM agent_guard.requests ORDER BY id;

-- 2. reject: nothing runs
SET SESSION AUTHORIZATION regress_approve_bot;
DELETE FROM public.approve_logs WHERE day = 2;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_approve_carol;
SELECT agent_guard.reject_pending(2, 'we still need those');
SELECT agent_guard.approve_pending(2);
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.approve_logs WHERE day = 2;
SELECT id, status, reason, decided_by FROM agent_guard.requests WHERE id = 2;

-- 3. a request outlives the agent's rolled-back transaction
SET SESSION AUTHORIZATION regress_approve_bot;
BEGIN;
INSERT INTO public.approve_logs VALUES (100, 100);
DELETE FROM public.approve_logs WHERE day = 3;
ROLLBACK;
RESET SESSION AUTHORIZATION;
SELECT id, status, statement FROM agent_guard.requests WHERE id = 3;
SELECT count(*) FROM public.approve_logs WHERE id = 100;

-- 4. nobody approves their own request; no agent approves anything
-- (a member of an agent role is an agent itself, even after RESET ROLE)
SET SESSION AUTHORIZATION regress_approve_alice;
SET ROLE regress_approve_bot;
DELETE FROM public.approve_logs WHERE day = 4;
RESET ROLE;
SELECT agent_guard.approve_pending(4);
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
-- a superuser who acted as the agent is no approver of that request
SET SESSION AUTHORIZATION regress_approve_root;
SET ROLE regress_approve_bot;
DELETE FROM public.approve_logs WHERE day = 4;
RESET ROLE;
SELECT agent_guard.approve_pending(5);
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_approve_bot;
SELECT agent_guard.approve_pending(3);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.reject_pending(3);
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT id, status FROM agent_guard.requests WHERE id IN (3, 4, 5) ORDER BY id;

-- 5. approvals_required: two different approvers
SELECT agent_guard.set_policy('DELETE', 'public.approve_logs', 'require_approval',
							  approvals_required => 2) > 0 AS ok;
SET SESSION AUTHORIZATION regress_approve_bot;
DELETE FROM public.approve_logs WHERE day = 5;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_approve_carol;
SELECT agent_guard.approve_pending(6, 'first');
SELECT agent_guard.approve_pending(6, 'again');
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.approve_logs WHERE day = 5;
SET SESSION AUTHORIZATION regress_approve_dave;
SELECT agent_guard.approve_pending(6, 'second');
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.approve_logs WHERE day = 5;
SELECT request_id, approver, note FROM agent_guard.approvals WHERE request_id = 6 ORDER BY approver;

-- 6. expired requests cannot be approved
SET SESSION AUTHORIZATION regress_approve_bot;
DELETE FROM public.approve_logs WHERE day = 6;
RESET SESSION AUTHORIZATION;
UPDATE agent_guard.requests SET expires_at = now() - interval '1 second' WHERE id = 7;
SET SESSION AUTHORIZATION regress_approve_carol;
SELECT agent_guard.approve_pending(7);
\echo :LAST_ERROR_SQLSTATE
SELECT id FROM agent_guard.pending_requests WHERE id = 7;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_approve_bot;
SELECT id, status FROM agent_guard.my_requests WHERE id = 7;
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.approve_logs WHERE day = 6;

-- 7. the replay has the agent's rights, not the approver's
SELECT agent_guard.set_policy('DELETE', 'public.approve_logs', 'require_approval') > 0 AS ok;
SET SESSION AUTHORIZATION regress_approve_bot;
DROP TABLE public.approve_secret;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_approve_carol;
SELECT agent_guard.approve_pending(8);
RESET SESSION AUTHORIZATION;
SELECT id, status, error FROM agent_guard.requests WHERE id = 8;
SELECT count(*) FROM public.approve_secret;

-- 8. parameters travel with the request (PREPARE / EXECUTE)
SET SESSION AUTHORIZATION regress_approve_bot;
PREPARE purge(int) AS DELETE FROM public.approve_logs WHERE day = $1;
EXECUTE purge(7);
DEALLOCATE purge;
RESET SESSION AUTHORIZATION;
SELECT id, statement, param_types::regtype[], param_values FROM agent_guard.requests WHERE id = 9;
SET SESSION AUTHORIZATION regress_approve_carol;
SELECT agent_guard.approve_pending(9);
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.approve_logs WHERE day = 7;
SELECT id, status, rows FROM agent_guard.requests WHERE id = 9;

-- 9. one statement of a multi-statement string is parked alone
SET SESSION AUTHORIZATION regress_approve_bot;
SELECT 1 AS first \; DELETE FROM public.approve_logs WHERE day = 8 \; SELECT 3 AS third;
RESET SESSION AUTHORIZATION;
SELECT id, statement FROM agent_guard.requests WHERE id = 10;

-- 10. a statement nested in a function is parked as the call the agent sent
CREATE FUNCTION public.approve_cleanup(d int) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN DELETE FROM public.approve_logs WHERE day = d; END $$;
SET SESSION AUTHORIZATION regress_approve_bot;
SELECT public.approve_cleanup(9);
RESET SESSION AUTHORIZATION;
SELECT id, statement, nested_statement FROM agent_guard.requests WHERE id = 11;
SET SESSION AUTHORIZATION regress_approve_carol;
SELECT agent_guard.approve_pending(11);
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.approve_logs WHERE day = 9;

-- 11. the table was replaced since parking: the approval does not carry over
SET SESSION AUTHORIZATION regress_approve_bot;
DELETE FROM public.approve_logs WHERE day = 0;
RESET SESSION AUTHORIZATION;
ALTER TABLE public.approve_logs RENAME TO approve_logs_old;
CREATE TABLE public.approve_logs (id int, day int);
INSERT INTO public.approve_logs VALUES (1, 0);
GRANT ALL ON public.approve_logs TO regress_approve_bot;
SET SESSION AUTHORIZATION regress_approve_carol;
SELECT agent_guard.approve_pending(12);
RESET SESSION AUTHORIZATION;
SELECT id, status, error FROM agent_guard.requests WHERE id = 12;
SELECT count(*) FROM public.approve_logs;

-- bad input changes nothing
SET SESSION AUTHORIZATION regress_approve_carol;
SELECT agent_guard.approve_pending(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.approve_pending(424242);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.reject_pending(-1);
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;

-- every decision is in the audit trail
SELECT request_id, decision, command, actor, rows FROM agent_guard.audit_log
 WHERE request_id IS NOT NULL ORDER BY seq;

DROP FUNCTION public.approve_cleanup(int);
DROP TABLE public.approve_logs, public.approve_logs_old, public.approve_secret;
REVOKE ALL ON SCHEMA agent_guard FROM regress_approve_carol, regress_approve_dave,
	regress_approve_alice, regress_approve_bot;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_guard FROM regress_approve_carol,
	regress_approve_dave, regress_approve_alice, regress_approve_bot;
REVOKE ALL ON ALL TABLES IN SCHEMA agent_guard FROM regress_approve_carol,
	regress_approve_dave, regress_approve_bot;
DROP ROLE regress_approve_bot, regress_approve_alice, regress_approve_carol, regress_approve_dave,
	regress_approve_root;
