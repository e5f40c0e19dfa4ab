-- The recycle bin: DROP TABLE under action "trash" sets the table aside.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_trash_bot LOGIN;
CREATE ROLE regress_trash_reader;
CREATE SCHEMA trash_shop;
GRANT USAGE, CREATE ON SCHEMA trash_shop TO regress_trash_bot;
CREATE TABLE trash_shop.orders (
	id serial PRIMARY KEY,
	amount int NOT NULL CHECK (amount > 0),
	note text UNIQUE
);
CREATE INDEX orders_amount_idx ON trash_shop.orders (amount);
INSERT INTO trash_shop.orders (amount, note) SELECT g, 'n' || g FROM generate_series(1, 50) g;
ALTER TABLE trash_shop.orders OWNER TO regress_trash_bot;
GRANT SELECT ON trash_shop.orders TO regress_trash_reader;
CREATE TABLE trash_shop.keep (id int);
ALTER TABLE trash_shop.keep OWNER TO regress_trash_bot;
CREATE TABLE trash_shop.not_mine (id int);
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_trash_bot');
RESET client_min_messages;
SELECT agent_guard.set_policy('DROP TABLE', 'trash_shop.*', 'trash') > 0 AS ok;
SELECT agent_guard.set_policy('DROP TABLE', 'trash_shop.*', 'trash', max_rows => 1);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DELETE', '*', 'trash');
\echo :LAST_ERROR_SQLSTATE

-- the agent's DROP TABLE "succeeds", and the table is set aside
SET SESSION AUTHORIZATION regress_trash_bot;
DROP TABLE trash_shop.orders;
SELECT to_regclass('trash_shop.orders') AS still_there;
-- a table it does not own cannot be trashed either
DROP TABLE trash_shop.not_mine;
\echo :LAST_ERROR_SQLSTATE
-- CASCADE, or a mix of objects, is not for the bin: refused
DROP TABLE trash_shop.keep CASCADE;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE IF EXISTS trash_shop.nosuch;
RESET SESSION AUTHORIZATION;
SELECT id, original_schema, original_name, trashed_name, dropped_by, agent, statement
  FROM agent_guard.trash;
SELECT count(*) FROM agent_guard.trash_1_orders;
SELECT to_regclass('trash_shop.not_mine') IS NOT NULL AS not_mine_kept,
	   to_regclass('trash_shop.keep') IS NOT NULL AS keep_kept;
-- only the table really moved is recorded as trashed (the allowed no-op's
-- record is not waited for: wait for it here)
DO $$
BEGIN
	FOR i IN 1..400 LOOP
		EXIT WHEN (SELECT count(*) FROM agent_guard.audit_log WHERE command = 'DROP TABLE') >= 2;
		PERFORM pg_sleep(0.025);
	END LOOP;
END $$;
SELECT decision, objects, statement FROM agent_guard.audit_events
 WHERE command = 'DROP TABLE' ORDER BY seq;

-- the name is taken meanwhile: restoring fails clearly and changes nothing
CREATE TABLE trash_shop.orders (x int);
SELECT agent_guard.restore_dropped(1);
\echo :LAST_ERROR_SQLSTATE
DROP TABLE trash_shop.orders;

-- restored whole: data, indexes, constraints, sequence, grants, owner
SELECT agent_guard.restore_dropped(1);
SELECT count(*), sum(amount) FROM trash_shop.orders;
SELECT indexname FROM pg_indexes WHERE schemaname = 'trash_shop' AND tablename = 'orders'
 ORDER BY indexname;
SELECT conname, contype FROM pg_constraint WHERE conrelid = 'trash_shop.orders'::regclass
 ORDER BY conname;
SELECT pg_get_serial_sequence('trash_shop.orders', 'id');
INSERT INTO trash_shop.orders (amount) VALUES (-1);
\echo :LAST_ERROR_SQLSTATE
SELECT has_table_privilege('regress_trash_reader', 'trash_shop.orders', 'SELECT') AS reader_can_read,
	   pg_get_userbyid(relowner) AS owner
  FROM pg_class WHERE oid = 'trash_shop.orders'::regclass;
SELECT count(*) FROM agent_guard.trash;
SELECT agent_guard.restore_dropped(1);
\echo :LAST_ERROR_SQLSTATE

-- purge drops for real what is older than asked
SET SESSION AUTHORIZATION regress_trash_bot;
DROP TABLE trash_shop.orders;
DROP TABLE trash_shop.keep;
RESET SESSION AUTHORIZATION;
SELECT agent_guard.purge_trash('1 hour') AS purged_old;
SELECT agent_guard.purge_trash('0 seconds') AS purged_all;
SELECT count(*) FROM agent_guard.trash;
SELECT count(*) FROM pg_class WHERE relnamespace = 'agent_guard'::regnamespace AND relname ~ '^trash_[0-9]+_';
SELECT agent_guard.purge_trash(NULL);
\echo :LAST_ERROR_SQLSTATE

DROP SCHEMA trash_shop CASCADE;
DROP ROLE regress_trash_bot, regress_trash_reader;
