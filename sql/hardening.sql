-- Hardening: an agent with a valid login tries routes around the guard that
-- the other suites do not take.  Every attempt runs as the agent and ends
-- with a check that the data it went for is intact.  Errors show their
-- SQLSTATE only, and their message where the reason matters: the routes are
-- tested here, the messages elsewhere (and the request ids in them would
-- depend on what came before).
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
-- many refusals in a row: keep the circuit breaker out of this test
SET agent_guard.breaker_threshold = 1000;
\set VERBOSITY sqlstate
CREATE ROLE regress_hardening_bot LOGIN;
CREATE ROLE regress_hardening_helper NOLOGIN;		-- not an agent; the bot may SET ROLE to it
CREATE ROLE regress_hardening_owner NOLOGIN;		-- a human owning a SECURITY DEFINER function
CREATE ROLE regress_hardening_approver LOGIN;
CREATE ROLE regress_hardening_human LOGIN;
GRANT regress_hardening_helper TO regress_hardening_bot;
CREATE SCHEMA hardening_bot AUTHORIZATION regress_hardening_bot;
CREATE SCHEMA hardening_billing;
GRANT USAGE ON SCHEMA hardening_billing TO regress_hardening_bot;
GRANT USAGE ON SCHEMA agent_guard TO regress_hardening_approver;
GRANT EXECUTE ON FUNCTION agent_guard.approve_pending(bigint, text)
	TO regress_hardening_approver;
CREATE TABLE public.hardening_victim (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO public.hardening_victim SELECT g, 'row ' || g FROM generate_series(1, 5) g;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.hardening_victim TO regress_hardening_bot;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_hardening_bot');
RESET client_min_messages;

-------------------------------------------------------------------------------
-- 1. An approval covers exactly what the approver saw: the replay runs as
--    the agent, judged, and leaves the approver's session as it was.
-------------------------------------------------------------------------------

-- 1a. A SECURITY DEFINER function owned by a human drops the tables it is
-- given.  The agent calls it once per row: the first DROP is parked; the
-- approver approves that one.  Replaying the call must not drop the second:
-- inside the function the current user is the owner and the session user
-- the approver, yet the replay is still the agent's and still judged.
CREATE TABLE public.hardening_sd_scratch (id int);
CREATE TABLE public.hardening_sd_secret (id int);
INSERT INTO public.hardening_sd_secret VALUES (1), (2);
ALTER TABLE public.hardening_sd_scratch OWNER TO regress_hardening_owner;
ALTER TABLE public.hardening_sd_secret OWNER TO regress_hardening_owner;
CREATE FUNCTION public.hardening_sd_drop(t text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
	EXECUTE format('DROP TABLE %s', t);
END $$;
ALTER FUNCTION public.hardening_sd_drop(text) OWNER TO regress_hardening_owner;
SET SESSION AUTHORIZATION regress_hardening_bot;
SELECT public.hardening_sd_drop(t)
  FROM (VALUES ('public.hardening_sd_scratch'), ('public.hardening_sd_secret')) v(t);
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT max(id) AS req FROM agent_guard.requests \gset
SELECT command, objects, nested_statement FROM agent_guard.requests WHERE id = :req;
SET SESSION AUTHORIZATION regress_hardening_approver;
SELECT agent_guard.approve_pending(:req);
RESET SESSION AUTHORIZATION;
SELECT status, error LIKE '%was not approved for it%' AS judged
  FROM agent_guard.requests WHERE id = :req;
SELECT to_regclass('public.hardening_sd_scratch') AS scratch,
	(SELECT count(*) FROM public.hardening_sd_secret) AS secret_rows;

-- 1b. The agent works as a helper role it may SET ROLE to (not an agent).
-- It parks a DELETE on the helper's small table, then plants a trigger on
-- that table that truncates another.  The approval covers the DELETE; the
-- trigger's TRUNCATE is judged during the replay like any other statement,
-- although the replay runs as the helper in the approver's session.
CREATE TABLE public.hardening_inbox (id int);
INSERT INTO public.hardening_inbox VALUES (1);
ALTER TABLE public.hardening_inbox OWNER TO regress_hardening_helper;
CREATE TABLE public.hardening_ledger (id int);
INSERT INTO public.hardening_ledger SELECT generate_series(1, 5);
GRANT SELECT, TRUNCATE ON public.hardening_ledger TO regress_hardening_helper;
GRANT CREATE ON SCHEMA public TO regress_hardening_helper;
SET SESSION AUTHORIZATION regress_hardening_bot;
SET ROLE regress_hardening_helper;
DELETE FROM public.hardening_inbox;
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION public.hardening_inbox_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	TRUNCATE public.hardening_ledger;
	RETURN OLD;
END $$;
CREATE TRIGGER hardening_inbox_purge BEFORE DELETE ON public.hardening_inbox
	FOR EACH ROW EXECUTE FUNCTION public.hardening_inbox_trigger();
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT max(id) AS req FROM agent_guard.requests \gset
SELECT command, objects, statement FROM agent_guard.requests WHERE id = :req;
SET SESSION AUTHORIZATION regress_hardening_approver;
SELECT agent_guard.approve_pending(:req);
RESET SESSION AUTHORIZATION;
SELECT status, error LIKE '%was not approved for it%' AS judged
  FROM agent_guard.requests WHERE id = :req;
SELECT (SELECT count(*) FROM public.hardening_inbox) AS inbox_rows,
	(SELECT count(*) FROM public.hardening_ledger) AS ledger_rows;
DROP TRIGGER hardening_inbox_purge ON public.hardening_inbox;
DROP FUNCTION public.hardening_inbox_trigger();
REVOKE CREATE ON SCHEMA public FROM regress_hardening_helper;

-- 1c. A parked DO block that also changes settings, and one that creates a
-- temporary table: the replay leaves the approver's session as it was.
-- Settings it changes (even without LOCAL) end with it, and it may not
-- create temporary objects that would shadow the approver's tables.
CREATE TABLE hardening_bot.scratch1 (id int);
CREATE TABLE hardening_bot.scratch2 (id int);
ALTER TABLE hardening_bot.scratch1 OWNER TO regress_hardening_bot;
ALTER TABLE hardening_bot.scratch2 OWNER TO regress_hardening_bot;
SET SESSION AUTHORIZATION regress_hardening_bot;
DO $$
BEGIN
	SET search_path = hardening_bot, pg_catalog, public;
	PERFORM set_config('work_mem', '64kB', false);
	DROP TABLE hardening_bot.scratch1;
END $$;
\echo :LAST_ERROR_SQLSTATE
DO $$
BEGIN
	CREATE TEMP TABLE hardening_shadow (id int, v text);
	DROP TABLE hardening_bot.scratch2;
END $$;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT max(id) - 1 AS req1, max(id) AS req2 FROM agent_guard.requests \gset
SET SESSION AUTHORIZATION regress_hardening_approver;
SHOW search_path;
SHOW work_mem;
SELECT agent_guard.approve_pending(:req1);
SHOW search_path;
SHOW work_mem;
SELECT agent_guard.approve_pending(:req2);
SELECT count(*) AS agent_temp_tables FROM pg_class
 WHERE relname = 'hardening_shadow' AND relpersistence = 't';
RESET SESSION AUTHORIZATION;
SELECT status, error FROM agent_guard.requests WHERE id = :req2;
SELECT to_regclass('hardening_bot.scratch1') AS scratch1,
	to_regclass('hardening_bot.scratch2') AS scratch2,
	(SELECT count(*) FROM public.hardening_victim) AS victim_rows;

-- 1d. A parked statement is stored and replayed alone, even when its text
-- holds what looks like a second statement, and when the client sent more.
CREATE TABLE hardening_bot.scratch3 (id int);
ALTER TABLE hardening_bot.scratch3 OWNER TO regress_hardening_bot;
SET SESSION AUTHORIZATION regress_hardening_bot;
DROP TABLE /* ; DROP TABLE public.hardening_victim; */ hardening_bot.scratch3 \; TRUNCATE public.hardening_victim;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT max(id) AS req FROM agent_guard.requests \gset
SELECT command, objects, statement FROM agent_guard.requests WHERE id = :req;
SET SESSION AUTHORIZATION regress_hardening_approver;
SELECT agent_guard.approve_pending(:req);
RESET SESSION AUTHORIZATION;
SELECT to_regclass('hardening_bot.scratch3') AS scratch3,
	(SELECT count(*) FROM public.hardening_victim) AS victim_rows;

-------------------------------------------------------------------------------
-- 2. Settings the agent may not change, through every alias.
-------------------------------------------------------------------------------

-- 2a. session_replication_role (ADMIN) with the privilege to set it granted:
-- SET, set_config() with a constant or a computed name, the pg_settings
-- view, a PL/pgSQL variable, a function's SET clause, stored role settings,
-- all refused.  A name computed as the statement runs could be any setting
-- (agent_guard's own, session_authorization), so no policy allows it.
GRANT SET ON PARAMETER session_replication_role TO regress_hardening_bot;
SET SESSION AUTHORIZATION regress_hardening_bot;
SET session_replication_role = replica;
\echo :LAST_ERROR_SQLSTATE
SELECT set_config('session_replication_role', 'replica', false);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
SELECT set_config(name, 'replica', false)
  FROM (SELECT 'session_replication_role'::text AS name OFFSET 0) s;
\set VERBOSITY sqlstate
\echo :LAST_ERROR_SQLSTATE
SHOW session_replication_role;
RESET session_replication_role;
UPDATE pg_settings SET setting = 'replica' WHERE name = 'session_replication_role';
\echo :LAST_ERROR_SQLSTATE
SHOW session_replication_role;
RESET session_replication_role;
DO $$
DECLARE
	name text := 'session_replication_role';
BEGIN
	PERFORM set_config(name, 'replica', false);
END $$;
\echo :LAST_ERROR_SQLSTATE
DO $$
DECLARE
	name text := 'session_replication_role';
	old text;
BEGIN
	old := set_config(name, 'replica', false);
END $$;
\echo :LAST_ERROR_SQLSTATE
SHOW session_replication_role;
CREATE FUNCTION hardening_bot.replica_role() RETURNS text LANGUAGE sql
	SET session_replication_role = replica
AS $$ SELECT current_setting('session_replication_role') $$;
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION hardening_bot.plain() RETURNS text LANGUAGE sql
AS $$ SELECT current_setting('session_replication_role') $$;
ALTER FUNCTION hardening_bot.plain() SET session_replication_role = replica;
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_hardening_bot SET session_replication_role = replica;
\echo :LAST_ERROR_SQLSTATE
-- a parameter fixed for the statement is as good as a constant
PREPARE set_it(text, text) AS SELECT set_config($1, $2, false);
EXECUTE set_it('work_mem', '8MB');
EXECUTE set_it('session_replication_role', 'replica');
\echo :LAST_ERROR_SQLSTATE
-- a generic plan is judged before its parameters are known: refused
SET plan_cache_mode = force_generic_plan;
EXECUTE set_it('work_mem', '16MB');
\echo :LAST_ERROR_SQLSTATE
EXECUTE set_it('session_replication_role', 'replica');
\echo :LAST_ERROR_SQLSTATE
RESET plan_cache_mode;
DEALLOCATE set_it;
RESET work_mem;
SHOW session_replication_role;
RESET SESSION AUTHORIZATION;
-- a session that is in replica mode already (connection options, role
-- defaults) cannot write in it as the agent
SET session_replication_role = replica;
SET ROLE regress_hardening_bot;
\set VERBOSITY terse
UPDATE public.hardening_victim SET v = 'replica' WHERE id = 2;
\set VERBOSITY sqlstate
\echo :LAST_ERROR_SQLSTATE
COPY public.hardening_victim FROM STDIN;
\.
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS readable FROM public.hardening_victim;
RESET ROLE;
RESET session_replication_role;
REVOKE SET ON PARAMETER session_replication_role FROM regress_hardening_bot;
SELECT proname, proconfig FROM pg_proc WHERE proname IN ('replica_role', 'plain');
SELECT count(*) AS stored_settings FROM pg_db_role_setting
 WHERE setrole = 'regress_hardening_bot'::regrole;
SELECT count(*) AS replica_rows FROM public.hardening_victim WHERE v = 'replica';

-- 2b. agent_guard's notifications come from its writer only: a forged
-- agent_guard_pending payload could show a chat bot or pager an innocent
-- statement under the id of a destructive request.
SET SESSION AUTHORIZATION regress_hardening_bot;
\set VERBOSITY terse
NOTIFY agent_guard_pending, '{"id": 1, "command": "SELECT"}';
\set VERBOSITY sqlstate
\echo :LAST_ERROR_SQLSTATE
SELECT pg_notify('agent_guard_alert', 'all clear');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_notify('agent_guard' || '_pending', '{}');
\echo :LAST_ERROR_SQLSTATE
PREPARE notify_it(text) AS SELECT pg_notify($1, '{}');
EXECUTE notify_it('agent_guard_pending');
\echo :LAST_ERROR_SQLSTATE
DEALLOCATE notify_it;
-- other channels are the agent's to use
NOTIFY hardening_channel, 'fine';
SELECT pg_notify('hardening_channel', 'fine');
RESET SESSION AUTHORIZATION;

-------------------------------------------------------------------------------
-- 3. Routes through the executor that the guard judges where they run.
-------------------------------------------------------------------------------
SET SESSION AUTHORIZATION regress_hardening_bot;

-- 3a. A procedure commits an allowed change, then tries a destructive one.
CREATE PROCEDURE hardening_bot.commit_then_purge() LANGUAGE plpgsql AS $$
BEGIN
	UPDATE public.hardening_victim SET v = 'committed' WHERE id = 1;
	COMMIT;
	DELETE FROM public.hardening_victim;
END $$;
CALL hardening_bot.commit_then_purge();
\echo :LAST_ERROR_SQLSTATE
SELECT id, v FROM public.hardening_victim ORDER BY id;

-- 3b. Rules on a table the agent owns.
CREATE TABLE hardening_bot.inbox (id int);
CREATE RULE purge_on_insert AS ON INSERT TO hardening_bot.inbox
	DO INSTEAD DELETE FROM public.hardening_victim;
INSERT INTO hardening_bot.inbox VALUES (1);
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE hardening_bot.trap (id int);
INSERT INTO hardening_bot.trap VALUES (1);
CREATE RULE wipe_on_delete AS ON DELETE TO hardening_bot.trap
	DO INSTEAD UPDATE public.hardening_victim SET v = 'wiped';
-- the rewritten UPDATE joins the trap, so it has a WHERE; its row cap holds
RESET SESSION AUTHORIZATION;
SELECT agent_guard.set_policy('UPDATE', 'public.hardening_victim', 'allow',
							  max_rows => 2) > 0 AS ok;
SET SESSION AUTHORIZATION regress_hardening_bot;
DELETE FROM hardening_bot.trap WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS wiped FROM public.hardening_victim WHERE v = 'wiped';
-- INSERT ... ON CONFLICT DO UPDATE updates what is there: capped as an UPDATE
INSERT INTO public.hardening_victim SELECT id, 'overwritten' FROM public.hardening_victim
	ON CONFLICT (id) DO UPDATE SET v = excluded.v;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO public.hardening_victim VALUES (1, 'upserted')
	ON CONFLICT (id) DO UPDATE SET v = excluded.v;
SELECT id, v FROM public.hardening_victim WHERE v IN ('overwritten', 'upserted') ORDER BY id;
UPDATE public.hardening_victim SET v = 'committed' WHERE id = 1;

-- 3c. Triggers on a table the agent owns truncate another: at once, and
-- deferred to COMMIT.
CREATE FUNCTION hardening_bot.truncate_victim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	TRUNCATE public.hardening_victim;
	RETURN NEW;
END $$;
CREATE TABLE hardening_bot.t1 (id int);
CREATE TRIGGER t1_truncate BEFORE INSERT ON hardening_bot.t1
	FOR EACH ROW EXECUTE FUNCTION hardening_bot.truncate_victim();
INSERT INTO hardening_bot.t1 VALUES (1);
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE hardening_bot.t2 (id int);
CREATE CONSTRAINT TRIGGER t2_truncate AFTER INSERT ON hardening_bot.t2
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION hardening_bot.truncate_victim();
INSERT INTO hardening_bot.t2 VALUES (1);
\echo :LAST_ERROR_SQLSTATE
BEGIN;
INSERT INTO hardening_bot.t2 VALUES (2);
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS t2_rows FROM hardening_bot.t2;

-- 3d. CREATE TABLE AS, SELECT INTO and materialized views run queries.
CREATE FUNCTION hardening_bot.purge() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM public.hardening_victim;
	RETURN 1;
END $$;
CREATE TABLE hardening_bot.copy1 AS
	WITH gone AS (DELETE FROM public.hardening_victim RETURNING *) SELECT * FROM gone;
\echo :LAST_ERROR_SQLSTATE
WITH gone AS (DELETE FROM public.hardening_victim RETURNING *)
	SELECT * INTO hardening_bot.copy2 FROM gone;
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE hardening_bot.copy3 AS SELECT hardening_bot.purge();
\echo :LAST_ERROR_SQLSTATE
SELECT hardening_bot.purge() INTO hardening_bot.copy4;
\echo :LAST_ERROR_SQLSTATE
CREATE MATERIALIZED VIEW hardening_bot.mv AS SELECT hardening_bot.purge() AS x WITH NO DATA;
REFRESH MATERIALIZED VIEW hardening_bot.mv;
\echo :LAST_ERROR_SQLSTATE
COPY (DELETE FROM public.hardening_victim RETURNING id) TO STDOUT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS copies FROM pg_class
 WHERE relnamespace = 'hardening_bot'::regnamespace AND relname LIKE 'copy%';

-- 3e. search_path games: the guard names what a name resolves to.
CREATE FUNCTION hardening_bot.pg_terminate_backend(pid int) RETURNS boolean
	LANGUAGE sql AS 'SELECT false';
CREATE FUNCTION hardening_bot.kill(pid int) RETURNS boolean
	LANGUAGE sql AS 'SELECT pg_catalog.pg_terminate_backend(pid)';
CREATE TABLE hardening_bot.hardening_victim (id int);
RESET SESSION AUTHORIZATION;
SELECT agent_guard.set_policy('EXECUTE', 'pg_catalog.pg_terminate_backend', 'deny') > 0 AS ok;
SELECT agent_guard.set_policy('DROP TABLE', 'hardening_bot.*', 'allow') > 0 AS ok;
SET SESSION AUTHORIZATION regress_hardening_bot;
-- pg_catalog is searched first unless named: this is the real one
SET search_path = hardening_bot, public;
SELECT pg_terminate_backend(0);
\echo :LAST_ERROR_SQLSTATE
SELECT hardening_bot.kill(0);
\echo :LAST_ERROR_SQLSTATE
-- the agent's own function of that name is harmless and allowed
SELECT hardening_bot.pg_terminate_backend(0);
-- the unqualified DROP resolves to the agent's table, allowed by name
SET search_path = hardening_bot, public;
DROP TABLE hardening_victim;
RESET search_path;
DROP TABLE hardening_victim;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) AS victim_rows FROM public.hardening_victim;
SELECT to_regclass('hardening_bot.hardening_victim') AS agent_copy;

-- 3f. An EXECUTE policy holds for functions the agent reaches indirectly:
-- as an aggregate's final function.
SELECT lo_create(4243001) = 4243001 AS created;
ALTER LARGE OBJECT 4243001 OWNER TO regress_hardening_bot;
SELECT agent_guard.set_policy('EXECUTE', 'pg_catalog.lo_unlink', 'deny') > 0 AS ok;
SET SESSION AUTHORIZATION regress_hardening_bot;
CREATE FUNCTION hardening_bot.keep_last(oid, oid) RETURNS oid LANGUAGE sql AS 'SELECT $2';
CREATE AGGREGATE hardening_bot.unlink_last(oid) (
	sfunc = hardening_bot.keep_last, stype = oid, finalfunc = lo_unlink);
SELECT lo_unlink(4243001);
\echo :LAST_ERROR_SQLSTATE
SELECT hardening_bot.unlink_last(lo) FROM (VALUES (4243001::oid)) v(lo);
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) AS large_objects FROM pg_largeobject_metadata WHERE oid = 4243001;

-- 3g. COPY to and from the server: a program is administration, and so is
-- writing a file on the server (it could rewrite postgresql.auto.conf).
GRANT pg_execute_server_program, pg_write_server_files TO regress_hardening_bot;
SELECT current_setting('data_directory') || '/agent_guard_hardening_probe' AS probe \gset
SET SESSION AUTHORIZATION regress_hardening_bot;
COPY public.hardening_victim FROM PROGRAM 'echo 99	injected';
\echo :LAST_ERROR_SQLSTATE
COPY public.hardening_victim TO PROGRAM 'cat > /dev/null';
\echo :LAST_ERROR_SQLSTATE
COPY (SELECT 'agent_guard.enabled = off') TO :'probe';
\echo :LAST_ERROR_SQLSTATE
COPY public.hardening_victim TO :'probe';
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
REVOKE pg_execute_server_program, pg_write_server_files FROM regress_hardening_bot;
SELECT pg_stat_file(:'probe', true) IS NULL AS no_file_written;

SELECT count(*) AS victim_rows FROM public.hardening_victim;

-- 3h. A plan prepared by a role that is not an agent, run after SET ROLE to
-- the agent: the plan is judged when it runs, not when it was made.
PREPARE wipe AS DELETE FROM public.hardening_victim;
SET ROLE regress_hardening_bot;
EXECUTE wipe;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DEALLOCATE wipe;

-- 3i. A foreign key's ON DELETE CASCADE set off by an allowed DELETE on the
-- agent's own table deletes in a table a policy protects: judged there.
CREATE TABLE hardening_bot.customers (id int PRIMARY KEY);
ALTER TABLE hardening_bot.customers OWNER TO regress_hardening_bot;
INSERT INTO hardening_bot.customers VALUES (1), (2);
CREATE TABLE hardening_billing.orders (id int,
	customer int REFERENCES hardening_bot.customers ON DELETE CASCADE);
INSERT INTO hardening_billing.orders VALUES (10, 1), (11, 1), (20, 2);
SELECT agent_guard.set_policy('DELETE', 'hardening_billing.*', 'deny') > 0 AS ok;
SET SESSION AUTHORIZATION regress_hardening_bot;
DELETE FROM hardening_bot.customers WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT (SELECT count(*) FROM hardening_bot.customers) AS customers,
	(SELECT count(*) FROM hardening_billing.orders) AS orders;

-------------------------------------------------------------------------------
-- 4. An allow policy on a pattern never reaches objects outside it: what a
--    statement takes along (partitions, inheritance children, dependent
--    columns, constraints, triggers, rules, indexes) is named as well.
-------------------------------------------------------------------------------
GRANT CREATE ON SCHEMA public TO regress_hardening_bot;
SELECT agent_guard.set_policy('DROP TABLE', 'public.hardening_tmp_*', 'allow') > 0 AS ok;
SELECT agent_guard.set_policy('DROP TABLE CASCADE', 'public.hardening_tmp_*', 'allow') > 0 AS ok;
SELECT agent_guard.set_policy('DROP FUNCTION CASCADE', 'public.hardening_tmp_*', 'allow') > 0 AS ok;
SELECT agent_guard.set_policy('TRUNCATE TABLE', 'public.hardening_tmp_*', 'allow') > 0 AS ok;
SELECT agent_guard.set_policy('DELETE WITHOUT WHERE', 'public.hardening_tmp_*', 'allow') > 0 AS ok;

-- 4a. A partitioned scratch table with a partition in another schema, and a
-- scratch parent with an inheritance child there.
CREATE TABLE public.hardening_tmp_events (id int, day int) PARTITION BY RANGE (day);
CREATE TABLE hardening_billing.events_2024 PARTITION OF public.hardening_tmp_events
	FOR VALUES FROM (1) TO (100);
INSERT INTO public.hardening_tmp_events VALUES (1, 1), (2, 2);
ALTER TABLE public.hardening_tmp_events OWNER TO regress_hardening_bot;
ALTER TABLE hardening_billing.events_2024 OWNER TO regress_hardening_bot;
CREATE TABLE public.hardening_tmp_parent (id int);
CREATE TABLE hardening_billing.child () INHERITS (public.hardening_tmp_parent);
INSERT INTO hardening_billing.child VALUES (1), (2);
ALTER TABLE public.hardening_tmp_parent OWNER TO regress_hardening_bot;
GRANT SELECT, DELETE, TRUNCATE ON hardening_billing.child TO regress_hardening_bot;
-- the scratch tables alone are fine
CREATE TABLE public.hardening_tmp_alone (id int);
ALTER TABLE public.hardening_tmp_alone OWNER TO regress_hardening_bot;
SET SESSION AUTHORIZATION regress_hardening_bot;
DROP TABLE public.hardening_tmp_alone;
DELETE FROM ONLY public.hardening_tmp_parent;
TRUNCATE ONLY public.hardening_tmp_parent;
-- reaching the other schema needs approval (installed DESTRUCTIVE policy)
DELETE FROM public.hardening_tmp_parent;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE public.hardening_tmp_parent;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE public.hardening_tmp_events;
\echo :LAST_ERROR_SQLSTATE
-- detaching first is itself destructive, and so is dropping the partition
ALTER TABLE public.hardening_tmp_events DETACH PARTITION hardening_billing.events_2024;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE hardening_billing.events_2024;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) AS child_rows FROM hardening_billing.child;
SELECT count(*) AS partition_rows FROM hardening_billing.events_2024;

-- 4b. DROP ... CASCADE of scratch functions and tables that a table in
-- another schema uses: a generated column, a CHECK constraint, a column
-- default, an expression index, a trigger, a foreign key, a rule, a view.
SET SESSION AUTHORIZATION regress_hardening_bot;
CREATE FUNCTION public.hardening_tmp_double(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
CREATE FUNCTION public.hardening_tmp_positive(int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0';
CREATE FUNCTION public.hardening_tmp_one() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1';
CREATE FUNCTION public.hardening_tmp_key(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 % 7';
CREATE FUNCTION public.hardening_tmp_stamp() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TABLE public.hardening_tmp_log (id int PRIMARY KEY);
CREATE TABLE public.hardening_tmp_base (id int);
RESET SESSION AUTHORIZATION;
INSERT INTO public.hardening_tmp_log VALUES (1);
CREATE TABLE hardening_billing.invoices (
	id int PRIMARY KEY,
	amount int CHECK (public.hardening_tmp_positive(amount)),
	doubled int GENERATED ALWAYS AS (public.hardening_tmp_double(amount)) STORED,
	flag int DEFAULT public.hardening_tmp_one(),
	log_id int REFERENCES public.hardening_tmp_log);
CREATE INDEX invoices_key ON hardening_billing.invoices (public.hardening_tmp_key(amount));
CREATE TRIGGER invoices_stamp BEFORE INSERT ON hardening_billing.invoices
	FOR EACH ROW EXECUTE FUNCTION public.hardening_tmp_stamp();
CREATE RULE invoices_log AS ON DELETE TO hardening_billing.invoices
	DO ALSO INSERT INTO public.hardening_tmp_log VALUES (OLD.id);
CREATE VIEW hardening_billing.base_view AS SELECT id FROM public.hardening_tmp_base;
INSERT INTO hardening_billing.invoices (id, amount, log_id) VALUES (1, 10, 1);
-- what each DROP ... CASCADE would reach outside the pattern
SELECT s AS statement, bool_or(e.object LIKE 'hardening_billing.%') AS names_billing,
	   max(e.action) FILTER (WHERE e.object LIKE 'hardening_billing.%') AS billing_action
  FROM unnest(ARRAY[
		'DROP FUNCTION public.hardening_tmp_double(int) CASCADE',
		'DROP FUNCTION public.hardening_tmp_positive(int) CASCADE',
		'DROP FUNCTION public.hardening_tmp_one() CASCADE',
		'DROP FUNCTION public.hardening_tmp_key(int) CASCADE',
		'DROP FUNCTION public.hardening_tmp_stamp() CASCADE',
		'DROP TABLE public.hardening_tmp_log CASCADE',
		'DROP TABLE public.hardening_tmp_base CASCADE']) WITH ORDINALITY AS u(s, n),
	   agent_guard.evaluate(s, 'regress_hardening_bot') e
 GROUP BY s, n ORDER BY n;
SET SESSION AUTHORIZATION regress_hardening_bot;
DROP FUNCTION public.hardening_tmp_double(int) CASCADE;
\echo :LAST_ERROR_SQLSTATE
DROP FUNCTION public.hardening_tmp_positive(int) CASCADE;
\echo :LAST_ERROR_SQLSTATE
DROP FUNCTION public.hardening_tmp_one() CASCADE;
\echo :LAST_ERROR_SQLSTATE
DROP FUNCTION public.hardening_tmp_key(int) CASCADE;
\echo :LAST_ERROR_SQLSTATE
DROP FUNCTION public.hardening_tmp_stamp() CASCADE;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE public.hardening_tmp_log CASCADE;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE public.hardening_tmp_base CASCADE;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
-- the invoices table is as it was
SELECT attname, pg_get_expr(d.adbin, d.adrelid) AS expression
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = 'hardening_billing.invoices'::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum;
SELECT conname, contype FROM pg_constraint
 WHERE conrelid = 'hardening_billing.invoices'::regclass ORDER BY conname;
SELECT indexrelid::regclass AS index FROM pg_index
 WHERE indrelid = 'hardening_billing.invoices'::regclass ORDER BY indexrelid::regclass::text;
SELECT tgname FROM pg_trigger
 WHERE tgrelid = 'hardening_billing.invoices'::regclass AND NOT tgisinternal;
SELECT rulename FROM pg_rewrite WHERE ev_class = 'hardening_billing.invoices'::regclass;
SELECT to_regclass('hardening_billing.base_view') AS base_view;
SELECT id, amount, doubled FROM hardening_billing.invoices;
REVOKE CREATE ON SCHEMA public FROM regress_hardening_bot;

-------------------------------------------------------------------------------
-- 5. The recycle bin takes no table of a partition or inheritance tree: a
--    partition moved alone would still be reached, and changed, through
--    its parent.  Such a DROP is refused under a trash policy.
-------------------------------------------------------------------------------
SELECT agent_guard.set_policy('DROP TABLE', 'public.hardening_orders*', 'trash') > 0 AS ok;
CREATE TABLE public.hardening_orders (id int, day int) PARTITION BY RANGE (day);
CREATE TABLE public.hardening_orders_1 PARTITION OF public.hardening_orders FOR VALUES FROM (1) TO (10);
CREATE TABLE public.hardening_orders_2 PARTITION OF public.hardening_orders FOR VALUES FROM (10) TO (20);
INSERT INTO public.hardening_orders VALUES (1, 1), (2, 2), (3, 15);
ALTER TABLE public.hardening_orders OWNER TO regress_hardening_bot;
ALTER TABLE public.hardening_orders_1 OWNER TO regress_hardening_bot;
CREATE TABLE public.hardening_orders_alone (id int);
ALTER TABLE public.hardening_orders_alone OWNER TO regress_hardening_bot;
SET SESSION AUTHORIZATION regress_hardening_bot;
DROP TABLE public.hardening_orders_1;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE public.hardening_orders;
\echo :LAST_ERROR_SQLSTATE
-- a table on its own still goes to the bin
DROP TABLE public.hardening_orders_alone;
RESET SESSION AUTHORIZATION;
SELECT original_name FROM agent_guard.trash ORDER BY id;
SELECT tableoid::regclass AS partition, id, day FROM public.hardening_orders ORDER BY id;

-------------------------------------------------------------------------------
-- 6. A superuser agent under policies that allow everything: the built-in
--    protections of schema agent_guard hold for every kind of object in it.
-------------------------------------------------------------------------------
SELECT agent_guard.set_policy('ALL', '*', 'allow', 'regress_hardening_bot') > 0 AS ok;
SELECT agent_guard.set_policy('ADMIN', '*', 'allow', 'regress_hardening_bot') > 0 AS ok;
SELECT agent_guard.set_policy('DESTRUCTIVE', '*', 'allow', 'regress_hardening_bot') > 0 AS ok;
-- a setting the administrator gave the agent role
ALTER ROLE regress_hardening_bot SET agent_guard.log_statement = redacted;
SELECT last_value AS audit_seq_before FROM agent_guard.audit_seq \gset
ALTER ROLE regress_hardening_bot SUPERUSER;
SET ROLE regress_hardening_bot;
-- table-level objects of agent_guard tables
DROP TRIGGER audit_protect ON agent_guard.audit_anchor;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER policies_changed ON agent_guard.policies;
\echo :LAST_ERROR_SQLSTATE
COMMENT ON TRIGGER audit_chain ON agent_guard.audit_log IS 'planted';
\echo :LAST_ERROR_SQLSTATE
COMMENT ON CONSTRAINT audit_log_pkey ON agent_guard.audit_log IS 'planted';
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE agent_guard.audit_log DISABLE TRIGGER ALL;
\echo :LAST_ERROR_SQLSTATE
-- new objects in the schema, and its default privileges
CREATE STATISTICS agent_guard.planted_stats ON seq, ts FROM agent_guard.audit_log;
\echo :LAST_ERROR_SQLSTATE
ALTER DEFAULT PRIVILEGES IN SCHEMA agent_guard GRANT ALL ON TABLES TO PUBLIC;
\echo :LAST_ERROR_SQLSTATE
-- its sequences: resetting the audit sequence would make the writer fail
SELECT setval('agent_guard.audit_seq', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT nextval('agent_guard.requests_id_seq');
\echo :LAST_ERROR_SQLSTATE
-- its settings, for this role: set, reset, reset with everything else
ALTER ROLE regress_hardening_bot SET agent_guard.log_statement = off;
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_hardening_bot IN DATABASE contrib_regression SET agent_guard.audit_reads = off;
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_hardening_bot RESET agent_guard.log_statement;
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_hardening_bot RESET ALL;
\echo :LAST_ERROR_SQLSTATE
UPDATE pg_settings SET setting = 'off' WHERE name = 'agent_guard.log_statement';
\echo :LAST_ERROR_SQLSTATE
-- loading libraries at the next login is loading libraries
ALTER ROLE regress_hardening_bot SET session_preload_libraries = 'auto_explain';
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_hardening_bot SET local_preload_libraries = 'auto_explain';
\echo :LAST_ERROR_SQLSTATE
-- becoming a role that is not an agent
SELECT set_config(name, 'regress_hardening_human', false)
  FROM (SELECT 'session_authorization'::text AS name OFFSET 0) s;
\echo :LAST_ERROR_SQLSTATE
SELECT session_user = 'regress_hardening_human' AS escaped;
RESET SESSION AUTHORIZATION;
SET ROLE regress_hardening_bot;
CREATE FUNCTION hardening_bot.as_human() RETURNS text LANGUAGE sql
	SET session_authorization = 'regress_hardening_human'
AS $$ SELECT session_user::text $$;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
RESET SESSION AUTHORIZATION;
ALTER ROLE regress_hardening_bot NOSUPERUSER;
-- everything is as it was
SELECT tgrelid::regclass AS "table", tgname, tgenabled FROM pg_trigger
 WHERE tgrelid IN ('agent_guard.audit_log'::regclass, 'agent_guard.audit_anchor'::regclass,
				   'agent_guard.policies'::regclass) AND NOT tgisinternal
 ORDER BY tgrelid::regclass::text, tgname;
SELECT count(*) AS comments FROM pg_description WHERE description = 'planted';
SELECT count(*) AS planted_stats FROM pg_statistic_ext WHERE stxname = 'planted_stats';
SELECT count(*) AS default_acls FROM pg_default_acl
 WHERE defaclnamespace = 'agent_guard'::regnamespace;
SELECT last_value >= :audit_seq_before AS audit_seq_kept FROM agent_guard.audit_seq;
SELECT count(*) AS as_human_functions FROM pg_proc WHERE proname = 'as_human';
SELECT d.datname, s.setconfig FROM pg_db_role_setting s
	LEFT JOIN pg_database d ON d.oid = s.setdatabase
 WHERE s.setrole = 'regress_hardening_bot'::regrole ORDER BY 1;
SELECT intact FROM agent_guard.verify_audit();

-------------------------------------------------------------------------------
-- Clean up.
-------------------------------------------------------------------------------
ALTER ROLE regress_hardening_bot RESET ALL;
ALTER ROLE regress_hardening_bot IN DATABASE contrib_regression RESET ALL;
SELECT agent_guard.unregister_agent('regress_hardening_bot');
DROP SCHEMA hardening_billing CASCADE;
DROP OWNED BY regress_hardening_bot, regress_hardening_helper, regress_hardening_owner,
	regress_hardening_approver, regress_hardening_human;
DROP TABLE public.hardening_victim, public.hardening_ledger;
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
DROP ROLE regress_hardening_bot, regress_hardening_helper, regress_hardening_owner,
	regress_hardening_approver, regress_hardening_human;
