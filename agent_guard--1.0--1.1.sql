/* agent_guard--1.0--1.1.sql */

\echo Use "ALTER EXTENSION agent_guard UPDATE TO '1.1'" to load this file. \quit

-- 1.1: a monitoring view for pending approvals, and comments on every
-- function and view.  No table changes; the C library is the same for both.

-- Per agent: how many requests wait for a human and since when; what to
-- alert on ("a request has been pending for more than N minutes").
CREATE VIEW agent_guard.pending_summary AS
	SELECT r.agent, count(*) AS pending,
		   min(r.requested_at) AS oldest_requested_at,
		   now() - min(r.requested_at) AS oldest_age,
		   min(r.expires_at) AS next_expiry
	  FROM agent_guard.requests r
	 WHERE r.status = 'pending' AND r.expires_at > now()
	 GROUP BY r.agent
	 ORDER BY min(r.requested_at), r.agent::oid;
REVOKE ALL ON agent_guard.pending_summary FROM PUBLIC;

COMMENT ON VIEW agent_guard.pending_summary IS
	'per agent: pending (unexpired) approval requests, the oldest one''s age and the next expiry';
COMMENT ON VIEW agent_guard.pending_requests IS
	'approval requests waiting for a decision, not expired, newest first';
COMMENT ON VIEW agent_guard.my_requests IS
	'the calling agent''s own approval requests and their status';
COMMENT ON VIEW agent_guard.agents IS
	'registered agent roles (security labels in pg_shseclabel, cluster-wide), their mode and whether they are frozen';
COMMENT ON VIEW agent_guard.audit_events IS
	'the audit trail without its hash columns, in order';
COMMENT ON VIEW agent_guard.blocked_events IS
	'audit records of refused, parked and monitored statements';
COMMENT ON VIEW agent_guard.agent_activity IS
	'per agent: statements allowed, denied, parked, approved, last seen, breaker and freeze state';

COMMENT ON FUNCTION agent_guard.register_agent(regrole, text) IS
	'mark a role as an agent (mode enforce or monitor); warns about risky attributes';
COMMENT ON FUNCTION agent_guard.unregister_agent(regrole) IS
	'stop treating a role as an agent';
COMMENT ON FUNCTION agent_guard.set_agent_mode(regrole, text) IS
	'switch an agent between enforce and monitor';
COMMENT ON FUNCTION agent_guard.agent_posture(regrole) IS
	'one row per risky attribute of a role, with the SQL that fixes it';
COMMENT ON FUNCTION agent_guard.set_policy(text, text, text, regrole, bigint, integer, text) IS
	'create or change the policy for (agent, command, object pattern); returns its id';
COMMENT ON FUNCTION agent_guard.drop_policy(bigint) IS
	'remove a policy';
COMMENT ON FUNCTION agent_guard.evaluate(text, regrole) IS
	'what the policies would decide for a statement run by an agent, without running it';
COMMENT ON FUNCTION agent_guard.approve_pending(bigint, text) IS
	'approve a parked request; runs it as the requesting agent once enough approvals exist';
COMMENT ON FUNCTION agent_guard.reject_pending(bigint, text) IS
	'reject a parked request';
COMMENT ON FUNCTION agent_guard.wait_for_decision(bigint, interval) IS
	'wait until a request is decided or the timeout passes, and return its state';
COMMENT ON FUNCTION agent_guard.verify_audit() IS
	'check the audit trail''s hash chain; returns the first broken row if any';
COMMENT ON FUNCTION agent_guard.purge_audit(interval) IS
	'remove audit rows older than the interval, keeping the chain verifiable';
COMMENT ON FUNCTION agent_guard.reset_breaker(regrole) IS
	'clear a tripped circuit breaker of an agent';
COMMENT ON FUNCTION agent_guard.breaker_tripped(regrole) IS
	'whether the agent''s circuit breaker is tripped';
COMMENT ON FUNCTION agent_guard.freeze(regrole) IS
	'refuse every statement of an agent and end its sessions, until unfreeze(); returns the sessions ended';
COMMENT ON FUNCTION agent_guard.unfreeze(regrole) IS
	'lift freeze() from an agent';
COMMENT ON FUNCTION agent_guard.restore_dropped(bigint) IS
	'put a table from the recycle bin back under its original name';
COMMENT ON FUNCTION agent_guard.purge_trash(interval) IS
	'drop for real the recycle bin''s tables older than the interval';

-- The digest without a SET clause, every name qualified: PostgreSQL can then
-- inline it into audit_chain() and verify_audit(), whose plans it keeps,
-- instead of parsing its body again in every transaction of the writer.
-- The value is the same, so chains written by 1.0 still verify.
CREATE OR REPLACE FUNCTION agent_guard.audit_digest(prev bytea, a agent_guard.audit_log)
	RETURNS bytea LANGUAGE sql STABLE
AS $$
	SELECT pg_catalog.sha256(COALESCE(prev, '\x'::pg_catalog.bytea) OPERATOR(pg_catalog.||)
		pg_catalog.convert_to(pg_catalog.json_build_array(
		a.seq, pg_catalog.to_char(pg_catalog.timezone('UTC', a.ts), 'YYYY-MM-DD"T"HH24:MI:SS.US'),
		a.database, a.pid, a."session_user", a."current_user", a.agent,
		a.application_name, a.client_addr, a.command, a.objects, a.statement,
		a.decision, a.policy_id, a.reason, a.rows, a.request_id, a.actor,
		a.xid::pg_catalog.text)::pg_catalog.text, 'UTF8'))
$$;
