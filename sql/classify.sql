-- Classification: how each statement resolves to (command, object) pairs,
-- shown with agent_guard.evaluate() under the installed defaults, and a few
-- of the same statements sent by the agent itself.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_classify_bot LOGIN;
CREATE ROLE regress_classify_owner;
CREATE SCHEMA cls_shop;
CREATE SCHEMA cls_report;
CREATE SCHEMA cls_tmp;
CREATE TABLE cls_shop.a (id int);
CREATE TABLE cls_shop.b (id int);
INSERT INTO cls_shop.a VALUES (1), (2);
INSERT INTO cls_shop.b VALUES (1);
CREATE TABLE cls_shop.customers (id int PRIMARY KEY, name text);
CREATE TABLE cls_shop.orders (id int PRIMARY KEY, customer int REFERENCES cls_shop.customers,
                              amount int, note text);
CREATE TABLE cls_shop.order_lines (order_id int REFERENCES cls_shop.orders, qty int);
CREATE TABLE cls_shop.unrelated (id int);
INSERT INTO cls_shop.customers VALUES (1, 'one'), (2, 'two');
INSERT INTO cls_shop.orders SELECT g, 1 + g % 2, g, 'order ' || g FROM generate_series(1, 5) g;
INSERT INTO cls_shop.order_lines VALUES (1, 10), (2, 20);
CREATE TABLE cls_shop.staging (id int, amount int);
INSERT INTO cls_shop.staging VALUES (1, 100), (6, 600);
CREATE TABLE cls_shop.events (id int, day int) PARTITION BY RANGE (day);
CREATE TABLE cls_shop.events_1 PARTITION OF cls_shop.events FOR VALUES FROM (1) TO (10);
CREATE FUNCTION cls_shop.answer() RETURNS int LANGUAGE sql AS 'SELECT 42';
CREATE PROCEDURE cls_shop.tidy() LANGUAGE sql AS 'SELECT 1';
-- things in other schemas that CASCADE would take along
CREATE VIEW cls_report.big_orders AS SELECT * FROM cls_shop.orders WHERE amount > 2;
CREATE VIEW cls_report.big_order_count AS SELECT count(*) AS n FROM cls_report.big_orders;
CREATE FUNCTION cls_report.order_label(o cls_shop.orders) RETURNS text
    LANGUAGE sql AS 'SELECT o.note';
CREATE TABLE cls_tmp.scratch (id int);
CREATE SEQUENCE cls_tmp.counter;
CREATE VIEW cls_report.scratch_ids AS SELECT id FROM cls_tmp.scratch;
GRANT USAGE ON SCHEMA cls_shop, cls_report TO regress_classify_bot;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA cls_shop TO regress_classify_bot;
GRANT USAGE ON SCHEMA agent_guard TO regress_classify_bot;
GRANT EXECUTE ON FUNCTION agent_guard.evaluate(text, regrole) TO regress_classify_bot;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_classify_bot');
RESET client_min_messages;

-- the installed defaults the decisions below refer to
SELECT id, agent, command, object_pattern, action, max_rows
  FROM agent_guard.policies ORDER BY id;

-- DROP: one pair per object; the DESTRUCTIVE group requires approval (policy 1)
SELECT * FROM agent_guard.evaluate('DROP TABLE cls_shop.a, cls_shop.b', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('DROP TABLE IF EXISTS cls_shop.no_such_table', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('DROP VIEW cls_report.big_order_count', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('DROP FUNCTION cls_shop.answer()', 'regress_classify_bot')
 ORDER BY 1, 2;

-- DROP ... CASCADE is a command of its own and names everything it would take:
-- the views in another schema (directly and through another view) and the
-- function over the table's row type
SELECT * FROM agent_guard.evaluate('DROP TABLE cls_shop.orders CASCADE', 'regress_classify_bot')
 ORDER BY 1, 2;
-- which is what PostgreSQL itself would drop
BEGIN;
DROP TABLE cls_shop.orders CASCADE;
ROLLBACK;
SELECT * FROM agent_guard.evaluate('DROP VIEW cls_report.big_orders CASCADE', 'regress_classify_bot')
 ORDER BY 1, 2;
-- RESTRICT is no CASCADE
SELECT * FROM agent_guard.evaluate('DROP TABLE cls_shop.unrelated RESTRICT', 'regress_classify_bot')
 ORDER BY 1, 2;
-- DROP SCHEMA CASCADE: the schema, what is in it, and what depends on that elsewhere
SELECT * FROM agent_guard.evaluate('DROP SCHEMA cls_tmp CASCADE', 'regress_classify_bot')
 ORDER BY 1, 2;
BEGIN;
DROP SCHEMA cls_tmp CASCADE;
ROLLBACK;
SELECT * FROM agent_guard.evaluate('DROP SCHEMA cls_tmp', 'regress_classify_bot')
 ORDER BY 1, 2;

-- TRUNCATE, and TRUNCATE ... CASCADE with every table it would empty through
-- foreign keys, transitively
SELECT * FROM agent_guard.evaluate('TRUNCATE cls_shop.a, cls_shop.b', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('TRUNCATE cls_shop.customers CASCADE', 'regress_classify_bot')
 ORDER BY 1, 2;
BEGIN;
TRUNCATE cls_shop.customers CASCADE;
ROLLBACK;

-- DELETE and UPDATE with and without WHERE; a constant-true WHERE is no WHERE
SELECT * FROM agent_guard.evaluate('DELETE FROM cls_shop.orders WHERE id = 5', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('DELETE FROM cls_shop.orders', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('DELETE FROM cls_shop.orders WHERE true', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('DELETE FROM cls_shop.orders WHERE 1 = 1', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('UPDATE cls_shop.orders SET amount = 0 WHERE id = 5', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('UPDATE cls_shop.orders SET amount = 0', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('UPDATE cls_shop.orders SET amount = 0 WHERE true', 'regress_classify_bot')
 ORDER BY 1, 2;
-- a table the statement only reads is a SELECT pair
SELECT * FROM agent_guard.evaluate(
  'UPDATE cls_shop.orders SET amount = 0 WHERE id IN (SELECT order_id FROM cls_shop.order_lines)',
  'regress_classify_bot') ORDER BY 1, 2;
-- USING without WHERE deletes every row too
SELECT * FROM agent_guard.evaluate('DELETE FROM cls_shop.staging USING cls_shop.b', 'regress_classify_bot')
 ORDER BY 1, 2;
-- without WHERE on a partitioned table
SELECT * FROM agent_guard.evaluate('DELETE FROM cls_shop.events', 'regress_classify_bot')
 ORDER BY 1, 2;

-- a data-modifying CTE is judged like the statement it hides
SELECT * FROM agent_guard.evaluate(
  'WITH x AS (DELETE FROM cls_shop.staging RETURNING *) SELECT count(*) FROM x',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate(
  'WITH x AS (DELETE FROM cls_shop.staging WHERE id > 5 RETURNING id) INSERT INTO cls_shop.a SELECT id FROM x',
  'regress_classify_bot') ORDER BY 1, 2;

-- MERGE, and INSERT ... SELECT: the source is a SELECT pair
SELECT * FROM agent_guard.evaluate(
  'MERGE INTO cls_shop.orders o USING cls_shop.staging s ON o.id = s.id
     WHEN MATCHED THEN UPDATE SET amount = s.amount
     WHEN NOT MATCHED THEN INSERT VALUES (s.id, 1, s.amount, NULL)',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('INSERT INTO cls_shop.a SELECT id FROM cls_shop.staging',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('INSERT INTO cls_shop.a VALUES (3)', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('SELECT * FROM cls_report.big_orders', 'regress_classify_bot')
 ORDER BY 1, 2;

-- ALTER TABLE: the dangerous subcommands are commands of their own
SELECT * FROM agent_guard.evaluate('ALTER TABLE cls_shop.orders DROP COLUMN note', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('ALTER TABLE cls_shop.orders ALTER COLUMN amount TYPE bigint',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('ALTER TABLE cls_shop.events DETACH PARTITION cls_shop.events_1',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('ALTER TABLE cls_shop.orders ADD COLUMN flag boolean',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('ALTER TABLE cls_shop.orders ADD COLUMN flag boolean, DROP COLUMN note',
  'regress_classify_bot') ORDER BY 1, 2;

-- COPY: FROM writes, TO reads, PROGRAM is administration (denied by policy 2)
SELECT * FROM agent_guard.evaluate('COPY cls_shop.a FROM STDIN', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('COPY cls_shop.a TO STDOUT', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('COPY cls_shop.a TO PROGRAM ''cat > /dev/null''', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('COPY cls_shop.a FROM PROGRAM ''echo 1''', 'regress_classify_bot')
 ORDER BY 1, 2;

-- CREATE OR REPLACE is destructive only when it replaces something
SELECT * FROM agent_guard.evaluate(
  'CREATE OR REPLACE VIEW cls_report.big_orders AS SELECT * FROM cls_shop.orders WHERE amount > 100',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('CREATE OR REPLACE VIEW cls_report.new_view AS SELECT 1 AS one',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate(
  'CREATE OR REPLACE FUNCTION cls_shop.answer() RETURNS int LANGUAGE sql AS ''SELECT 0''',
  'regress_classify_bot') ORDER BY 1, 2;
-- another argument list is another function: nothing is replaced
SELECT * FROM agent_guard.evaluate(
  'CREATE OR REPLACE FUNCTION cls_shop.answer(int) RETURNS int LANGUAGE sql AS ''SELECT $1''',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate(
  'CREATE OR REPLACE FUNCTION cls_shop.new_answer() RETURNS int LANGUAGE sql AS ''SELECT 0''',
  'regress_classify_bot') ORDER BY 1, 2;

-- administration: the ADMIN group is denied (policy 2)
SELECT * FROM agent_guard.evaluate('GRANT SELECT ON cls_shop.orders, cls_shop.a TO PUBLIC',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('REVOKE ALL ON ALL TABLES IN SCHEMA cls_shop FROM regress_classify_owner',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('GRANT regress_classify_owner TO regress_classify_bot',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('CREATE ROLE regress_classify_new SUPERUSER', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('ALTER ROLE regress_classify_owner SUPERUSER', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('DROP ROLE regress_classify_owner', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('VACUUM FULL cls_shop.orders', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('VACUUM (FULL, ANALYZE) cls_shop.orders, cls_shop.a', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('VACUUM cls_shop.orders', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('VACUUM (FULL false) cls_shop.orders', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('SET session_replication_role = replica', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('SET LOCAL session_replication_role TO DEFAULT', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate(
  'SELECT set_config(''session_replication_role'', ''replica'', false)', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('SET work_mem = ''8MB''', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('LOCK TABLE cls_shop.orders, cls_shop.a IN ACCESS EXCLUSIVE MODE',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('CLUSTER cls_shop.orders USING orders_pkey', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('REINDEX TABLE cls_shop.orders', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('REINDEX INDEX cls_shop.orders_pkey', 'regress_classify_bot')
 ORDER BY 1, 2;

-- DROP OWNED and REASSIGN OWNED are destructive
SELECT * FROM agent_guard.evaluate('DROP OWNED BY regress_classify_owner', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('DROP OWNED BY regress_classify_owner CASCADE', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('REASSIGN OWNED BY regress_classify_owner TO regress_classify_bot',
  'regress_classify_bot') ORDER BY 1, 2;

-- ordinary DDL is allowed (policy 6)
SELECT * FROM agent_guard.evaluate('CREATE TABLE cls_shop.new_table (a int)', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('CREATE INDEX ON cls_shop.orders (amount)', 'regress_classify_bot')
 ORDER BY 1, 2;

-- a multi-statement string: each statement is judged on its own
SELECT * FROM agent_guard.evaluate(
  'DELETE FROM cls_shop.orders WHERE id = 5; DROP TABLE cls_shop.a; SELECT * FROM cls_shop.b; TRUNCATE cls_shop.b',
  'regress_classify_bot') ORDER BY 1, 2;

-- function calls are EXECUTE pairs once some policy names EXECUTE
SELECT * FROM agent_guard.evaluate('SELECT pg_terminate_backend(1)', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT agent_guard.set_policy('EXECUTE', 'pg_catalog.pg_terminate_backend', 'deny');
SELECT agent_guard.set_policy('EXECUTE', 'pg_catalog.lo_*', 'require_approval');
SELECT * FROM agent_guard.evaluate('SELECT pg_terminate_backend(1)', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('SELECT lo_unlink(1)', 'regress_classify_bot')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('SELECT cls_shop.answer(), count(*) FROM cls_shop.a',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate(
  'DELETE FROM cls_shop.orders WHERE id = 5 RETURNING pg_terminate_backend(id)',
  'regress_classify_bot') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('CALL cls_shop.tidy()', 'regress_classify_bot')
 ORDER BY 1, 2;
-- a SQL function is named even when the planner inlines its body
SELECT agent_guard.set_policy('EXECUTE', 'cls_shop.answer', 'deny');
SELECT * FROM agent_guard.evaluate('SELECT cls_shop.answer()', 'regress_classify_bot')
 ORDER BY 1, 2;

-- the agent asks for itself, then sends the statements
SET ROLE regress_classify_bot;
SELECT * FROM agent_guard.evaluate('DROP TABLE cls_shop.a, cls_shop.b', current_user::regrole)
 ORDER BY 1, 2;
DROP TABLE cls_shop.a, cls_shop.b;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM cls_shop.staging;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM cls_shop.staging WHERE true;
\echo :LAST_ERROR_SQLSTATE
WITH x AS (DELETE FROM cls_shop.staging RETURNING *) SELECT count(*) FROM x;
\echo :LAST_ERROR_SQLSTATE
UPDATE cls_shop.orders SET amount = 0;
\echo :LAST_ERROR_SQLSTATE
GRANT SELECT ON cls_shop.orders TO PUBLIC;
\echo :LAST_ERROR_SQLSTATE
SET session_replication_role = replica;
\echo :LAST_ERROR_SQLSTATE
SELECT pg_terminate_backend(1);
\echo :LAST_ERROR_SQLSTATE
SELECT cls_shop.answer();
\echo :LAST_ERROR_SQLSTATE
-- in one string, the refused statement takes the earlier one down with it
INSERT INTO cls_shop.a VALUES (3) \; DROP TABLE cls_shop.b;
\echo :LAST_ERROR_SQLSTATE
-- allowed: a DELETE with a WHERE clause, an INSERT ... SELECT
DELETE FROM cls_shop.staging WHERE id = 6;
INSERT INTO cls_shop.a SELECT id FROM cls_shop.staging;
RESET ROLE;

-- only the allowed statements ran
SELECT * FROM cls_shop.a ORDER BY id;
SELECT * FROM cls_shop.b ORDER BY id;
SELECT * FROM cls_shop.staging ORDER BY id;
SELECT id, amount FROM cls_shop.orders ORDER BY id;
SELECT has_table_privilege('public', 'cls_shop.orders', 'SELECT') AS public_can_read;
SHOW session_replication_role;

SET client_min_messages = warning;
DROP SCHEMA cls_shop, cls_report, cls_tmp CASCADE;
RESET client_min_messages;
REVOKE USAGE ON SCHEMA agent_guard FROM regress_classify_bot;
REVOKE EXECUTE ON FUNCTION agent_guard.evaluate(text, regrole) FROM regress_classify_bot;
DROP ROLE regress_classify_bot;
DROP ROLE regress_classify_owner;
