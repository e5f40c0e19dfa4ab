-- Policy precedence: the most specific matching policy wins (agent-specific
-- over all agents, then exact command over group, then exact pattern over
-- wildcard over '*'); among equally specific ones the most restrictive
-- (deny > require_approval > trash > allow), then the lowest id.  No
-- matching policy means deny.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_precedence_bot1 LOGIN;
CREATE ROLE regress_precedence_bot2 LOGIN;
CREATE ROLE regress_precedence_team;
CREATE ROLE regress_precedence_member LOGIN IN ROLE regress_precedence_team;
CREATE SCHEMA prec;
CREATE TABLE prec.orders (id int, amount int);
INSERT INTO prec.orders SELECT g, g * 10 FROM generate_series(1, 5) g;
CREATE TABLE prec.notes (id int, body text);
INSERT INTO prec.notes VALUES (1, 'first');
CREATE TABLE prec.audit_log_2024 (id int);
CREATE TABLE prec.audit_log_2025 (id int);
INSERT INTO prec.audit_log_2024 VALUES (2024);
INSERT INTO prec.audit_log_2025 VALUES (2025);
CREATE TABLE prec.scratch (id int);
INSERT INTO prec.scratch VALUES (1), (2), (3);
GRANT USAGE ON SCHEMA prec TO regress_precedence_bot1, regress_precedence_bot2, regress_precedence_team;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA prec
  TO regress_precedence_bot1, regress_precedence_bot2, regress_precedence_team;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_precedence_bot1');
SELECT agent_guard.register_agent('regress_precedence_bot2');
SELECT agent_guard.register_agent('regress_precedence_team');
RESET client_min_messages;
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;

--
-- No matching policy: deny.  Without the ALL default, a SELECT matches nothing.
--
SELECT agent_guard.drop_policy(6);
SELECT id, agent, command, object_pattern, action, max_rows FROM agent_guard.policies ORDER BY id;
SELECT * FROM agent_guard.evaluate('SELECT * FROM prec.orders', 'regress_precedence_bot1') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('INSERT INTO prec.notes VALUES (2, ''x'')', 'regress_precedence_bot1')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('UPDATE prec.orders SET amount = 0 WHERE id = 1', 'regress_precedence_bot1')
 ORDER BY 1, 2;
SET ROLE regress_precedence_bot1;
SELECT count(*) FROM prec.orders;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO prec.notes VALUES (2, 'not stored');
\echo :LAST_ERROR_SQLSTATE
-- a matching policy still applies: policy 3 allows this UPDATE
UPDATE prec.orders SET amount = 11 WHERE id = 1;
-- (RESET ROLE matches no policy either: start a new session instead)
\c -
SELECT * FROM prec.notes ORDER BY id;
SELECT * FROM prec.orders ORDER BY id;
-- back to allowing everything else
SELECT agent_guard.set_policy('ALL', '*', 'allow');

--
-- Agent-specific beats all agents, in both directions, and does not leak to
-- the other agent.
--
SELECT agent_guard.set_policy('DELETE', '*', 'deny', 'regress_precedence_bot1');
SELECT agent_guard.set_policy('TRUNCATE TABLE', 'prec.scratch', 'allow', 'regress_precedence_bot1');
-- an agent-specific group policy on '*' beats an exact command and pattern for all agents
SELECT agent_guard.set_policy('WRITE', '*', 'deny', 'regress_precedence_bot1');
SELECT agent_guard.set_policy('INSERT', 'prec.notes', 'allow');
SELECT id, agent, command, object_pattern, action FROM agent_guard.policies WHERE id > 6 ORDER BY id;
SELECT 'bot1' AS agent, e.* FROM agent_guard.evaluate(
  'DELETE FROM prec.orders WHERE id = 5; TRUNCATE prec.scratch; INSERT INTO prec.notes VALUES (3, ''x'')',
  'regress_precedence_bot1') e
UNION ALL
SELECT 'bot2', e.* FROM agent_guard.evaluate(
  'DELETE FROM prec.orders WHERE id = 5; TRUNCATE prec.scratch; INSERT INTO prec.notes VALUES (3, ''x'')',
  'regress_precedence_bot2') e
ORDER BY 1, 2, 3;
SET ROLE regress_precedence_bot1;
DELETE FROM prec.orders WHERE id = 5;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO prec.notes VALUES (3, 'from bot1');
\echo :LAST_ERROR_SQLSTATE
TRUNCATE prec.scratch;
RESET ROLE;
SELECT count(*) AS orders FROM prec.orders;
SELECT * FROM prec.notes ORDER BY id;
SELECT count(*) AS scratch FROM prec.scratch;
INSERT INTO prec.scratch VALUES (1), (2), (3);
SET ROLE regress_precedence_bot2;
TRUNCATE prec.scratch;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO prec.notes VALUES (3, 'from bot2');
DELETE FROM prec.orders WHERE id = 5;
RESET ROLE;
SELECT count(*) AS scratch FROM prec.scratch;
SELECT * FROM prec.notes ORDER BY id;
SELECT * FROM prec.orders ORDER BY id;
SELECT count(*) FROM (SELECT agent_guard.drop_policy(id) FROM agent_guard.policies WHERE id > 7) d;

--
-- Exact command beats group, even when the group policy names the object
-- exactly and the command policy (3, UPDATE on *) does not.
--
SELECT agent_guard.set_policy('WRITE', 'prec.orders', 'deny');
SELECT id, agent, command, object_pattern, action FROM agent_guard.policies
 WHERE id = 3 OR id > 6 ORDER BY id;
SELECT * FROM agent_guard.evaluate('UPDATE prec.orders SET amount = 0 WHERE id = 2', 'regress_precedence_bot1')
 ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('INSERT INTO prec.orders VALUES (9, 90)', 'regress_precedence_bot1')
 ORDER BY 1, 2;
-- a refined command is a command of its own: policy 3 does not match it
SELECT * FROM agent_guard.evaluate('UPDATE prec.orders SET amount = 0', 'regress_precedence_bot1')
 ORDER BY 1, 2;
SET ROLE regress_precedence_bot1;
UPDATE prec.orders SET amount = 22 WHERE id = 2;
INSERT INTO prec.orders VALUES (9, 90);
\echo :LAST_ERROR_SQLSTATE
UPDATE prec.orders SET amount = 0;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM prec.orders ORDER BY id;
SELECT count(*) FROM (SELECT agent_guard.drop_policy(id) FROM agent_guard.policies WHERE id > 7) d;

--
-- Exact pattern beats wildcard pattern beats '*'.
--
SELECT agent_guard.set_policy('SELECT', '*', 'allow');
SELECT agent_guard.set_policy('SELECT', 'prec.audit_log_*', 'deny');
SELECT agent_guard.set_policy('SELECT', 'prec.audit_log_2025', 'allow');
SELECT agent_guard.set_policy('SELECT', 'prec.note?', 'require_approval');
SELECT id, agent, command, object_pattern, action FROM agent_guard.policies WHERE id > 6 ORDER BY id;
SELECT * FROM agent_guard.evaluate(
  'SELECT * FROM prec.audit_log_2024, prec.audit_log_2025, prec.notes, prec.orders',
  'regress_precedence_bot1') ORDER BY 1, 2;
SET ROLE regress_precedence_bot1;
SELECT * FROM prec.audit_log_2024;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM prec.audit_log_2025;
SELECT * FROM prec.notes;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM prec.orders;
RESET ROLE;
SELECT count(*) FROM (SELECT agent_guard.drop_policy(id) FROM agent_guard.policies WHERE id > 7) d;

--
-- Equally specific: the most restrictive wins, whatever the order the
-- policies were created in; among identical actions the lowest id.
--
SELECT agent_guard.set_policy('DROP TABLE', 'prec.a_*', 'allow');
SELECT agent_guard.set_policy('DROP TABLE', 'prec.t_*', 'trash');
SELECT agent_guard.set_policy('DROP TABLE', 'prec.r_*', 'require_approval');
SELECT agent_guard.set_policy('DROP TABLE', 'prec.d_*', 'deny');
SELECT agent_guard.set_policy('DROP TABLE', 'prec.*_d', 'deny');
SELECT agent_guard.set_policy('DROP TABLE', 'prec.*_r', 'require_approval');
SELECT agent_guard.set_policy('DROP TABLE', 'prec.*_t', 'trash');
SELECT agent_guard.set_policy('DROP TABLE', 'prec.*_a', 'allow');
SELECT id, agent, command, object_pattern, action FROM agent_guard.policies WHERE id > 6 ORDER BY id;
SELECT * FROM agent_guard.evaluate(
  'DROP TABLE prec.a_a, prec.a_t, prec.t_a, prec.t_r, prec.r_t, prec.r_d, prec.d_r, prec.a_d, prec.d_a',
  'regress_precedence_bot1') ORDER BY 2;
-- the same answer every time
SELECT count(DISTINCT (e.object, e.action, e.policy_id)) AS distinct_answers
  FROM generate_series(1, 20) i,
       LATERAL agent_guard.evaluate('DROP TABLE prec.t_r', 'regress_precedence_bot1') e;
-- two groups of equal rank: DESTRUCTIVE (require_approval) over WRITE (allow),
-- ADMIN (deny) over WRITE (allow)
SELECT agent_guard.set_policy('WRITE', '*', 'allow');
SELECT * FROM agent_guard.evaluate('DELETE FROM prec.scratch', 'regress_precedence_bot1') ORDER BY 1, 2;
SELECT * FROM agent_guard.evaluate('COPY prec.scratch FROM PROGRAM ''echo 1''', 'regress_precedence_bot1')
 ORDER BY 1, 2;
SET ROLE regress_precedence_bot1;
DELETE FROM prec.scratch;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) AS scratch FROM prec.scratch;
SELECT count(*) FROM (SELECT agent_guard.drop_policy(id) FROM agent_guard.policies WHERE id > 7) d;

--
-- Policies for a registered group role apply to its members; a member that
-- is an agent itself gets both its own and the group's (equally specific).
--
SELECT agent_guard.set_policy('SELECT', 'prec.orders', 'deny', 'regress_precedence_team');
SELECT agent_guard.set_policy('SELECT', 'prec.notes', 'allow', 'regress_precedence_bot1');
SELECT agent_guard.set_policy('SELECT', 'prec.notes', 'deny', 'regress_precedence_team');
SELECT id, agent, command, object_pattern, action FROM agent_guard.policies WHERE id > 6 ORDER BY id;
SELECT 'member' AS agent, e.* FROM agent_guard.evaluate('SELECT * FROM prec.orders, prec.notes',
  'regress_precedence_member') e
UNION ALL
SELECT 'bot1 before', e.* FROM agent_guard.evaluate('SELECT * FROM prec.orders, prec.notes',
  'regress_precedence_bot1') e
ORDER BY 1, 2, 3;
GRANT regress_precedence_team TO regress_precedence_bot1;
SELECT 'bot1 in team' AS agent, e.* FROM agent_guard.evaluate('SELECT * FROM prec.orders, prec.notes',
  'regress_precedence_bot1') e
UNION ALL
SELECT 'bot2', e.* FROM agent_guard.evaluate('SELECT * FROM prec.orders, prec.notes',
  'regress_precedence_bot2') e
ORDER BY 1, 2, 3;
SET ROLE regress_precedence_member;
SELECT count(*) FROM prec.orders;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_precedence_bot1;
SELECT * FROM prec.notes;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_precedence_bot2;
SELECT count(*) FROM prec.orders;
SELECT count(*) FROM prec.notes;
RESET ROLE;
REVOKE regress_precedence_team FROM regress_precedence_bot1;

--
-- Many wildcard policies under one command are found through their literal
-- prefix or suffix instead of one by one: the decisions stay the same.
--
SELECT agent_guard.set_policy('DELETE', 'prec.*', 'allow') > 0 AS ok;
SELECT agent_guard.set_policy('DELETE', 'prec.audit_log_*', 'deny') > 0 AS ok;
SELECT agent_guard.set_policy('DELETE', '*.scratch', 'require_approval') > 0 AS ok;
SELECT agent_guard.set_policy('DELETE', '?rec.no*s', 'deny') > 0 AS ok;
CREATE FUNCTION pg_temp.delete_decisions() RETURNS TABLE (target text, action text, pattern text)
LANGUAGE sql AS $$
	SELECT t, e.action, p.object_pattern
	  FROM unnest(ARRAY['audit_log_2024', 'scratch', 'notes', 'orders']) t,
		   agent_guard.evaluate(format('DELETE FROM prec.%I WHERE id = 1', t),
								'regress_precedence_bot1') e
	  LEFT JOIN agent_guard.policies p ON p.id = e.policy_id
	 WHERE e.command = 'DELETE'
	 ORDER BY 1
$$;
SELECT * FROM pg_temp.delete_decisions();
SELECT count(agent_guard.set_policy('DELETE', format('other_%s.t_*', g), 'deny'))
  + count(agent_guard.set_policy('DELETE', format('*.other_%s', g), 'deny'))
  + count(agent_guard.set_policy('DELETE', format('?ther_%s.*', g), 'deny')) AS fillers
  FROM generate_series(1, 20) g;
SELECT * FROM pg_temp.delete_decisions();
DELETE FROM agent_guard.policies WHERE command = 'DELETE' AND object_pattern <> '*';

SET client_min_messages = warning;
DROP SCHEMA prec CASCADE;
RESET client_min_messages;
DROP ROLE regress_precedence_member;
DROP ROLE regress_precedence_bot1;
DROP ROLE regress_precedence_bot2;
DROP ROLE regress_precedence_team;
