-- Row caps: an agent's statement that changes more rows than max_rows is
-- rolled back (AG002), or parked when the policy wants an approval above it.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_cap_bot LOGIN;
CREATE ROLE regress_cap_carol LOGIN;
CREATE TABLE public.cap_logs (id int PRIMARY KEY, day int);
INSERT INTO public.cap_logs SELECT g, g % 100 FROM generate_series(1, 2000) g;
CREATE TABLE public.cap_parts (id int, day int) PARTITION BY RANGE (day);
CREATE TABLE public.cap_parts_a PARTITION OF public.cap_parts FOR VALUES FROM (0) TO (50);
CREATE TABLE public.cap_parts_b PARTITION OF public.cap_parts FOR VALUES FROM (50) TO (100);
INSERT INTO public.cap_parts SELECT g, g % 100 FROM generate_series(1, 200) g;
GRANT ALL ON public.cap_logs, public.cap_parts TO regress_cap_bot;
GRANT USAGE ON SCHEMA agent_guard TO regress_cap_carol;
GRANT EXECUTE ON FUNCTION agent_guard.approve_pending(bigint, text) TO regress_cap_carol;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_cap_bot');
RESET client_min_messages;
SELECT agent_guard.set_policy('DELETE', 'public.cap_logs', 'allow', max_rows => 20) AS cap_policy;

SET SESSION AUTHORIZATION regress_cap_bot;
-- exactly max_rows passes
DELETE FROM public.cap_logs WHERE day = 1;
-- max_rows + 1 is rolled back
DELETE FROM public.cap_logs WHERE day = 2 OR id = 1000;
\echo :LAST_ERROR_SQLSTATE
-- "delete logs older than X" that matches everything
DELETE FROM public.cap_logs WHERE id > 0;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) AS remaining, count(*) FILTER (WHERE day = 2) AS day_2 FROM public.cap_logs;

-- inside an explicit transaction the whole transaction fails
SET SESSION AUTHORIZATION regress_cap_bot;
BEGIN;
DELETE FROM public.cap_logs WHERE day = 3;
DELETE FROM public.cap_logs WHERE day IN (4, 5);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET SESSION AUTHORIZATION;
SELECT count(*) FILTER (WHERE day IN (3, 4, 5)) AS days_3_to_5 FROM public.cap_logs;

-- rows changed in a data-modifying CTE count too
SET SESSION AUTHORIZATION regress_cap_bot;
WITH gone AS (DELETE FROM public.cap_logs WHERE day IN (6, 7) RETURNING id)
SELECT count(*) FROM gone;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) FILTER (WHERE day IN (6, 7)) AS days_6_7 FROM public.cap_logs;

-- the default caps of UPDATE (1000), across partitions
SET SESSION AUTHORIZATION regress_cap_bot;
UPDATE public.cap_parts SET id = id WHERE day >= 0;
RESET SESSION AUTHORIZATION;
INSERT INTO public.cap_parts SELECT g, g % 100 FROM generate_series(201, 1200) g;
SET SESSION AUTHORIZATION regress_cap_bot;
UPDATE public.cap_parts SET id = -id WHERE day >= 0;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) FILTER (WHERE id < 0) AS negated FROM public.cap_parts;

-- require_approval with max_rows: small changes run, large ones wait
SELECT agent_guard.set_policy('DELETE', 'public.cap_logs', 'require_approval', max_rows => 20) AS cap_policy;
SET SESSION AUTHORIZATION regress_cap_bot;
DELETE FROM public.cap_logs WHERE day = 8;
DELETE FROM public.cap_logs WHERE day IN (9, 10);
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) FILTER (WHERE day = 8) AS day_8, count(*) FILTER (WHERE day IN (9, 10)) AS days_9_10
  FROM public.cap_logs;
SELECT id, command, statement, reason FROM agent_guard.requests;
SET SESSION AUTHORIZATION regress_cap_carol;
SELECT agent_guard.approve_pending(1);
RESET SESSION AUTHORIZATION;
SELECT id, status, rows FROM agent_guard.requests;
SELECT count(*) FILTER (WHERE day IN (9, 10)) AS days_9_10 FROM public.cap_logs;

-- a monitored agent is only recorded
SELECT agent_guard.set_agent_mode('regress_cap_bot', 'monitor');
SET SESSION AUTHORIZATION regress_cap_bot;
DELETE FROM public.cap_logs WHERE day IN (11, 12);
RESET SESSION AUTHORIZATION;
SELECT count(*) FILTER (WHERE day IN (11, 12)) AS days_11_12 FROM public.cap_logs;

-- the audit trail has each cap with its row count
CREATE FUNCTION pg_temp.wait_audit(n int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..400 LOOP
		IF (SELECT count(*) FROM agent_guard.audit_log WHERE decision IN ('row_cap', 'would_cap', 'parked')) >= n THEN
			RETURN 'ok';
		END IF;
		PERFORM pg_sleep(0.025);
	END LOOP;
	RETURN 'timed out';
END $$;
SELECT pg_temp.wait_audit(7);
SELECT command, objects, decision, rows, policy_id FROM agent_guard.audit_log
 WHERE decision IN ('row_cap', 'would_cap', 'parked') ORDER BY seq;

DROP TABLE public.cap_logs, public.cap_parts;
REVOKE ALL ON SCHEMA agent_guard FROM regress_cap_carol;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_guard FROM regress_cap_carol;
DROP ROLE regress_cap_bot, regress_cap_carol;
