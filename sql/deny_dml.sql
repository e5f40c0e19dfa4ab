-- DML by an agent is judged where the executor runs it: at top level, inside
-- functions, DO blocks, data-modifying CTEs, MERGE, rules, triggers, prepared
-- statements and EXPLAIN ANALYZE.  The same statements from a human run.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_deny_dml_bot LOGIN;
CREATE ROLE regress_deny_dml_human LOGIN;
CREATE TABLE public.dml_items (id int PRIMARY KEY, qty int NOT NULL);
CREATE TABLE public.dml_other (id int PRIMARY KEY, note text NOT NULL);
CREATE TABLE public.dml_inbox (id int PRIMARY KEY);
CREATE TABLE public.dml_events (id int PRIMARY KEY);
INSERT INTO public.dml_items SELECT g, g * 10 FROM generate_series(1, 5) g;
INSERT INTO public.dml_other SELECT g, 'other ' || g FROM generate_series(1, 3) g;
GRANT SELECT, INSERT, UPDATE, DELETE
	ON public.dml_items, public.dml_other, public.dml_inbox, public.dml_events
	TO regress_deny_dml_bot, regress_deny_dml_human;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_deny_dml_bot');
RESET client_min_messages;

-- Functions, a rule and a trigger, all owned by the (non-agent) test owner.
CREATE FUNCTION public.dml_purge_plpgsql() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.dml_other VALUES (99, 'written before the purge');
	DELETE FROM public.dml_items;
END $$;
CREATE FUNCTION public.dml_trim_plpgsql(keep int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM public.dml_items WHERE id > keep;
END $$;
CREATE FUNCTION public.dml_purge_sql() RETURNS void LANGUAGE sql AS $$
	DELETE FROM public.dml_items
$$;
CREATE FUNCTION public.dml_reset_sql() RETURNS void LANGUAGE sql AS $$
	UPDATE public.dml_items SET qty = 0
$$;
CREATE RULE dml_inbox_purge AS ON INSERT TO public.dml_inbox
	DO ALSO DELETE FROM public.dml_other;
CREATE FUNCTION public.dml_events_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM public.dml_other;
	RETURN NEW;
END $$;
CREATE TRIGGER dml_events_purge AFTER INSERT ON public.dml_events
	FOR EACH ROW EXECUTE FUNCTION public.dml_events_trigger();

SET ROLE regress_deny_dml_bot;

-- Top level: without WHERE needs approval (installed DESTRUCTIVE policy 1).
DELETE FROM public.dml_items;
\echo :LAST_ERROR_SQLSTATE
UPDATE public.dml_items SET qty = 0;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM public.dml_items WHERE true;
\echo :LAST_ERROR_SQLSTATE
SELECT id, qty FROM public.dml_items ORDER BY id;
-- With a WHERE clause: allowed (policies 3 and 4).
UPDATE public.dml_items SET qty = qty + 1 WHERE id = 1;
DELETE FROM public.dml_items WHERE id = 5;
SELECT id, qty FROM public.dml_items ORDER BY id;

-- Inside a plpgsql function the agent calls: the nested DELETE is refused and
-- the function's earlier INSERT is rolled back with it.
SELECT public.dml_purge_plpgsql();
\echo :LAST_ERROR_SQLSTATE
SELECT public.dml_trim_plpgsql(3);
SELECT count(*) AS items FROM public.dml_items;
SELECT count(*) AS other FROM public.dml_other;

-- Inside a DO block.
DO $$ BEGIN DELETE FROM public.dml_items; END $$;
\echo :LAST_ERROR_SQLSTATE
DO $$ BEGIN UPDATE public.dml_items SET qty = 0; END $$;
\echo :LAST_ERROR_SQLSTATE
DO $$ BEGIN EXECUTE 'DELETE FROM public.' || 'dml_items'; END $$;
\echo :LAST_ERROR_SQLSTATE
DO $$ BEGIN UPDATE public.dml_items SET qty = 0 WHERE id = 2; END $$;
SELECT id, qty FROM public.dml_items ORDER BY id;

-- Inside a SQL-language function.
SELECT public.dml_purge_sql();
\echo :LAST_ERROR_SQLSTATE
SELECT public.dml_reset_sql();
\echo :LAST_ERROR_SQLSTATE
SELECT id, qty FROM public.dml_items ORDER BY id;

-- As a data-modifying CTE.
WITH gone AS (DELETE FROM public.dml_items RETURNING id)
SELECT count(*) FROM gone;
\echo :LAST_ERROR_SQLSTATE
WITH changed AS (UPDATE public.dml_items SET qty = 0 RETURNING id)
SELECT count(*) FROM changed;
\echo :LAST_ERROR_SQLSTATE
WITH gone AS (DELETE FROM public.dml_items WHERE id = 3 RETURNING id)
SELECT count(*) FROM gone;
SELECT id, qty FROM public.dml_items ORDER BY id;

-- MERGE, with a policy denying it on one table.
RESET ROLE;
SELECT agent_guard.set_policy('MERGE', 'public.dml_items', 'deny');
SET ROLE regress_deny_dml_bot;
MERGE INTO public.dml_items t USING public.dml_other s ON t.id = s.id
	WHEN MATCHED THEN DELETE;
\echo :LAST_ERROR_SQLSTATE
SELECT id, qty FROM public.dml_items ORDER BY id;
MERGE INTO public.dml_other t USING public.dml_items s ON t.id = s.id
	WHEN MATCHED THEN UPDATE SET note = t.note || ' (merged)';
SELECT id, note FROM public.dml_other ORDER BY id;

-- A rule on the table the agent inserts into: its DELETE without WHERE is
-- judged, and the INSERT that fired it is rolled back.
INSERT INTO public.dml_inbox VALUES (1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS inbox FROM public.dml_inbox;
SELECT count(*) AS other FROM public.dml_other;

-- A trigger fired by the agent's INSERT deletes everything elsewhere: refused,
-- and the whole statement is rolled back.
INSERT INTO public.dml_events VALUES (1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS events FROM public.dml_events;
SELECT count(*) AS other FROM public.dml_other;

-- PREPARE / EXECUTE.
PREPARE dml_purge AS DELETE FROM public.dml_items;
EXECUTE dml_purge;
\echo :LAST_ERROR_SQLSTATE
PREPARE dml_delete_one(int) AS DELETE FROM public.dml_items WHERE id = $1;
EXECUTE dml_delete_one(4);
SELECT id, qty FROM public.dml_items ORDER BY id;
DEALLOCATE dml_purge;
DEALLOCATE dml_delete_one;

-- EXPLAIN runs nothing and is allowed; EXPLAIN ANALYZE runs the statement.
EXPLAIN (COSTS OFF) DELETE FROM public.dml_items;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) DELETE FROM public.dml_items;
\echo :LAST_ERROR_SQLSTATE
SELECT id, qty FROM public.dml_items ORDER BY id;

RESET ROLE;

-- A human runs the same statements (each rolled back to keep the data).
SET ROLE regress_deny_dml_human;
BEGIN;
DELETE FROM public.dml_items;
SELECT count(*) AS items FROM public.dml_items;
ROLLBACK;
BEGIN;
UPDATE public.dml_items SET qty = 0;
SELECT sum(qty) AS qty FROM public.dml_items;
ROLLBACK;
BEGIN;
SELECT public.dml_purge_plpgsql();
SELECT count(*) AS items FROM public.dml_items;
ROLLBACK;
BEGIN;
DO $$ BEGIN DELETE FROM public.dml_items; END $$;
SELECT count(*) AS items FROM public.dml_items;
ROLLBACK;
BEGIN;
SELECT public.dml_purge_sql();
SELECT count(*) AS items FROM public.dml_items;
ROLLBACK;
BEGIN;
WITH gone AS (DELETE FROM public.dml_items RETURNING id)
SELECT count(*) FROM gone;
ROLLBACK;
BEGIN;
MERGE INTO public.dml_items t USING public.dml_other s ON t.id = s.id
	WHEN MATCHED THEN DELETE;
SELECT count(*) AS items FROM public.dml_items;
ROLLBACK;
BEGIN;
INSERT INTO public.dml_inbox VALUES (1);
SELECT count(*) AS inbox FROM public.dml_inbox;
SELECT count(*) AS other FROM public.dml_other;
ROLLBACK;
BEGIN;
INSERT INTO public.dml_events VALUES (1);
SELECT count(*) AS events FROM public.dml_events;
SELECT count(*) AS other FROM public.dml_other;
ROLLBACK;
BEGIN;
PREPARE dml_purge AS DELETE FROM public.dml_items;
EXECUTE dml_purge;
DEALLOCATE dml_purge;
SELECT count(*) AS items FROM public.dml_items;
ROLLBACK;
BEGIN;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) DELETE FROM public.dml_items;
SELECT count(*) AS items FROM public.dml_items;
ROLLBACK;
RESET ROLE;

SELECT id, qty FROM public.dml_items ORDER BY id;
SELECT id, note FROM public.dml_other ORDER BY id;

DROP TABLE public.dml_items, public.dml_other, public.dml_inbox, public.dml_events;
DROP FUNCTION public.dml_purge_plpgsql(), public.dml_trim_plpgsql(int),
	public.dml_purge_sql(), public.dml_reset_sql(), public.dml_events_trigger();
DROP ROLE regress_deny_dml_bot;
DROP ROLE regress_deny_dml_human;
