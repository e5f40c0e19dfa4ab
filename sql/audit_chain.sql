-- The audit trail: one row per decision, chained so that an edit or a
-- removal shows, and append-only for everyone.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_audit_bot LOGIN;
CREATE ROLE regress_audit_watch LOGIN;		-- monitor mode
CREATE ROLE regress_audit_carol LOGIN;		-- approver
CREATE ROLE regress_audit_auditor LOGIN;
CREATE TABLE public.audit_items (id int PRIMARY KEY, secret text);
INSERT INTO public.audit_items SELECT g, 'pw' || g FROM generate_series(1, 20) g;
GRANT ALL ON public.audit_items TO regress_audit_bot, regress_audit_watch;
GRANT USAGE ON SCHEMA agent_guard TO regress_audit_carol, regress_audit_auditor;
GRANT EXECUTE ON FUNCTION agent_guard.approve_pending(bigint, text),
	agent_guard.reject_pending(bigint, text) TO regress_audit_carol;
GRANT SELECT ON agent_guard.audit_events, agent_guard.blocked_events,
	agent_guard.agent_activity TO regress_audit_auditor;
GRANT EXECUTE ON FUNCTION agent_guard.verify_audit() TO regress_audit_auditor;

-- records that are not waited for arrive shortly: wait for them
CREATE FUNCTION pg_temp.wait_audit(n int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..400 LOOP
		IF (SELECT count(*) FROM agent_guard.audit_log) >= n THEN
			RETURN 'ok';
		END IF;
		PERFORM pg_sleep(0.025);
	END LOOP;
	RETURN 'timed out';
END $$;

SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_audit_bot');
SELECT agent_guard.register_agent('regress_audit_watch', 'monitor');
RESET client_min_messages;
SELECT agent_guard.set_policy('TRUNCATE TABLE', 'public.audit_items', 'deny') AS deny_truncate;
SELECT pg_temp.wait_audit(3);

-- each kind of decision leaves exactly one row
SET SESSION AUTHORIZATION regress_audit_bot;
UPDATE public.audit_items SET secret = 'x' WHERE id = 1;			-- allowed
TRUNCATE public.audit_items;									-- denied
DELETE FROM public.audit_items WHERE id < 5 OR true;			-- parked
DELETE FROM public.audit_items;								-- parked
SELECT count(*) FROM public.audit_items;						-- a read: no row
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_audit_watch;
UPDATE public.audit_items SET secret = 'y' WHERE id = 2;			-- allowed
TRUNCATE public.audit_items;									-- would be denied
RESET SESSION AUTHORIZATION;
-- the monitored TRUNCATE ran; put the rows back
INSERT INTO public.audit_items SELECT g, 'pw' || g FROM generate_series(1, 20) g;
SET SESSION AUTHORIZATION regress_audit_carol;
SELECT agent_guard.approve_pending(1);
SELECT agent_guard.reject_pending(2, 'no');
RESET SESSION AUTHORIZATION;
SELECT pg_temp.wait_audit(12);
SELECT seq, agent, "session_user", "current_user", command, objects, decision,
	   policy_id, request_id, actor, rows, statement
  FROM agent_guard.audit_log ORDER BY seq;
SELECT count(*) FILTER (WHERE pid IS NOT NULL) AS with_pid,
	   count(*) FILTER (WHERE database = current_database()) AS in_this_db,
	   count(*) FILTER (WHERE application_name = 'pg_regress/audit_chain') AS with_app,
	   count(*) FILTER (WHERE xid IS NOT NULL) AS with_xid
  FROM agent_guard.audit_log WHERE agent IS NOT NULL;

-- the chain verifies
SELECT * FROM agent_guard.verify_audit();

-- statements as agent_guard.log_statement says: redacted keeps literals out
SET agent_guard.log_statement = redacted;
SET SESSION AUTHORIZATION regress_audit_bot;
UPDATE public.audit_items SET secret = 'hunter2' WHERE id = 3;
RESET SESSION AUTHORIZATION;
SET agent_guard.log_statement = off;
SET SESSION AUTHORIZATION regress_audit_bot;
UPDATE public.audit_items SET secret = 'hunter3' WHERE id = 4;
RESET SESSION AUTHORIZATION;
RESET agent_guard.log_statement;
SELECT pg_temp.wait_audit(14);
SELECT seq, decision, statement FROM agent_guard.audit_log WHERE seq > 12 ORDER BY seq;

-- reads are recorded only when agent_guard.audit_reads is on
SET agent_guard.audit_reads = on;
SET SESSION AUTHORIZATION regress_audit_bot;
SELECT count(*) FROM public.audit_items WHERE id = 1;
RESET SESSION AUTHORIZATION;
RESET agent_guard.audit_reads;
SELECT pg_temp.wait_audit(15);
SELECT seq, command, objects, decision FROM agent_guard.audit_log WHERE seq > 14 ORDER BY seq;

-- the views, for an auditor
SET SESSION AUTHORIZATION regress_audit_auditor;
SELECT seq, agent, command, decision FROM agent_guard.blocked_events ORDER BY seq;
SELECT agent, mode, allowed, denied, parked, monitored, approved_executed, rejected,
	   last_seen IS NOT NULL AS seen
  FROM agent_guard.agent_activity ORDER BY agent::text;
SELECT count(*) FROM agent_guard.audit_events;
SELECT intact FROM agent_guard.verify_audit();
-- which the auditor cannot change
DELETE FROM agent_guard.audit_events;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;

-- append-only, even for a superuser and for agents granted the table
UPDATE agent_guard.audit_log SET decision = 'allowed' WHERE seq = 5;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM agent_guard.audit_log WHERE seq = 5;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE agent_guard.audit_log;
\echo :LAST_ERROR_SQLSTATE
GRANT ALL ON agent_guard.audit_log TO regress_audit_bot;
GRANT USAGE ON SCHEMA agent_guard TO regress_audit_bot;
SET SESSION AUTHORIZATION regress_audit_bot;
DELETE FROM agent_guard.audit_log;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
REVOKE ALL ON agent_guard.audit_log FROM regress_audit_bot;
REVOKE ALL ON SCHEMA agent_guard FROM regress_audit_bot;

-- a superuser who switches the protection off is caught by verify_audit()
ALTER TABLE agent_guard.audit_log DISABLE TRIGGER audit_protect;
UPDATE agent_guard.audit_log SET decision = 'allowed' WHERE seq = 5;
SELECT * FROM agent_guard.verify_audit();
UPDATE agent_guard.audit_log SET decision = 'denied' WHERE seq = 5;
SELECT intact FROM agent_guard.verify_audit();
DELETE FROM agent_guard.audit_log WHERE seq = 7;
SELECT * FROM agent_guard.verify_audit();
ALTER TABLE agent_guard.audit_log ENABLE TRIGGER audit_protect;

-- purging keeps what remains verifiable (after the tampered part is gone)
SELECT agent_guard.purge_audit('0 seconds') AS purged;
SELECT * FROM agent_guard.verify_audit();
SET SESSION AUTHORIZATION regress_audit_bot;
TRUNCATE public.audit_items;
RESET SESSION AUTHORIZATION;
SELECT pg_temp.wait_audit(2);
SELECT command, decision FROM agent_guard.audit_log ORDER BY seq;
SELECT * FROM agent_guard.verify_audit();
SELECT agent_guard.purge_audit(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.purge_audit('-1 day');
\echo :LAST_ERROR_SQLSTATE

-- a huge statement is refused and recorded, its text cut to 64 kB
INSERT INTO public.audit_items SELECT generate_series(1, 3);
SET SESSION AUTHORIZATION regress_audit_bot;
SELECT 'TRUNCATE public.audit_items /* ' || repeat('y', 200000) || ' */' AS huge \gset
:huge;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) AS items FROM public.audit_items;
SELECT decision, length(statement) AS length, right(statement, 32) AS ending
  FROM agent_guard.audit_log ORDER BY seq DESC LIMIT 1;

DROP TABLE public.audit_items;
REVOKE ALL ON SCHEMA agent_guard FROM regress_audit_carol, regress_audit_auditor;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_guard FROM regress_audit_carol, regress_audit_auditor;
REVOKE ALL ON ALL TABLES IN SCHEMA agent_guard FROM regress_audit_auditor;
DROP ROLE regress_audit_bot, regress_audit_watch, regress_audit_carol, regress_audit_auditor;
