-- DDL from an agent under the installed defaults: destructive DDL needs
-- approval (AG001), administrative DDL is denied (42501), the rest runs.
-- A human running the same statements is not touched.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_ddl_bot LOGIN;
CREATE ROLE regress_ddl_human LOGIN;
CREATE SCHEMA ddl_shop AUTHORIZATION regress_ddl_bot;
CREATE TABLE ddl_shop.orders (id int PRIMARY KEY, note text, amount int);
INSERT INTO ddl_shop.orders SELECT g, 'order ' || g, g FROM generate_series(1, 5) g;
CREATE VIEW ddl_shop.big_orders AS SELECT * FROM ddl_shop.orders WHERE amount > 2;
CREATE TABLE ddl_shop.events (id int, day int) PARTITION BY RANGE (day);
CREATE TABLE ddl_shop.events_1 PARTITION OF ddl_shop.events FOR VALUES FROM (1) TO (10);
INSERT INTO ddl_shop.events VALUES (1, 1), (2, 2);
CREATE FUNCTION ddl_shop.answer() RETURNS int LANGUAGE sql AS 'SELECT 42';
-- the agent owns everything: an owner can always DROP, the guard still refuses
ALTER TABLE ddl_shop.orders OWNER TO regress_ddl_bot;
ALTER VIEW ddl_shop.big_orders OWNER TO regress_ddl_bot;
ALTER TABLE ddl_shop.events OWNER TO regress_ddl_bot;
ALTER TABLE ddl_shop.events_1 OWNER TO regress_ddl_bot;
ALTER FUNCTION ddl_shop.answer() OWNER TO regress_ddl_bot;
GRANT USAGE, CREATE ON SCHEMA ddl_shop TO regress_ddl_human;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_ddl_bot');
RESET client_min_messages;

SET ROLE regress_ddl_bot;
-- destructive: parked for approval
DROP TABLE ddl_shop.orders;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE ddl_shop.orders CASCADE;
\echo :LAST_ERROR_SQLSTATE
DROP VIEW ddl_shop.big_orders;
\echo :LAST_ERROR_SQLSTATE
DROP FUNCTION ddl_shop.answer();
\echo :LAST_ERROR_SQLSTATE
DROP SCHEMA ddl_shop CASCADE;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE ddl_shop.orders;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE ddl_shop.orders DROP COLUMN note;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE ddl_shop.orders ALTER COLUMN amount TYPE bigint;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE ddl_shop.events DETACH PARTITION ddl_shop.events_1;
\echo :LAST_ERROR_SQLSTATE
CREATE OR REPLACE VIEW ddl_shop.big_orders AS SELECT * FROM ddl_shop.orders WHERE amount > 100;
\echo :LAST_ERROR_SQLSTATE
-- administrative: denied
GRANT ALL ON ddl_shop.orders TO PUBLIC;
\echo :LAST_ERROR_SQLSTATE
VACUUM FULL ddl_shop.orders;
\echo :LAST_ERROR_SQLSTATE
CLUSTER ddl_shop.orders USING orders_pkey;
\echo :LAST_ERROR_SQLSTATE
REINDEX TABLE ddl_shop.orders;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
LOCK TABLE ddl_shop.orders IN ACCESS EXCLUSIVE MODE;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SET session_replication_role = replica;
\echo :LAST_ERROR_SQLSTATE
CREATE EXTENSION pg_trgm;
\echo :LAST_ERROR_SQLSTATE
-- ordinary DDL runs
CREATE TABLE ddl_shop.scratch (a int);
CREATE INDEX ON ddl_shop.orders (amount);
ALTER TABLE ddl_shop.orders ADD COLUMN flag boolean;
CREATE OR REPLACE VIEW ddl_shop.new_view AS SELECT 1 AS one;
RESET ROLE;

-- nothing destructive ran
SELECT count(*) AS orders, (SELECT count(*) FROM ddl_shop.events) AS events,
       (SELECT count(*) FROM ddl_shop.big_orders) AS big_orders
  FROM ddl_shop.orders;
SELECT attname FROM pg_attribute
 WHERE attrelid = 'ddl_shop.orders'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'ddl_shop.orders'::regclass AND attname = 'amount';
SELECT relname FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
 WHERE i.inhparent = 'ddl_shop.events'::regclass;
SELECT pg_get_viewdef('ddl_shop.big_orders'::regclass);
SELECT has_table_privilege('public', 'ddl_shop.orders', 'SELECT') AS public_can_read;
SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm';

-- a human runs the same statements unhindered
SET ROLE regress_ddl_human;
CREATE TABLE ddl_shop.human_table (a int);
INSERT INTO ddl_shop.human_table VALUES (1), (2);
TRUNCATE ddl_shop.human_table;
ALTER TABLE ddl_shop.human_table ADD COLUMN b int;
ALTER TABLE ddl_shop.human_table DROP COLUMN b;
DROP TABLE ddl_shop.human_table;
RESET ROLE;
SET session_replication_role = replica;
RESET session_replication_role;
DROP TABLE ddl_shop.orders CASCADE;
DROP SCHEMA ddl_shop CASCADE;
DROP ROLE regress_ddl_bot;
DROP ROLE regress_ddl_human;
