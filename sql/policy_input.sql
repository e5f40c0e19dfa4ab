-- Input checking of set_policy() and drop_policy(): every invalid argument
-- is refused with a clear error (22023, 22004 for NULL, 42704 for an
-- unknown policy) and changes nothing; valid spellings are canonicalised,
-- and set_policy() updates the policy it finds for (agent, command, pattern).
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_policy_input_bot LOGIN;
CREATE ROLE regress_policy_input_human LOGIN;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_policy_input_bot');
RESET client_min_messages;
SELECT count(*), max(id) FROM agent_guard.policies;

-- commands
SELECT agent_guard.set_policy('DROP TABEL', 'public.t', 'deny');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DELETE WITHOUT WHERE PLEASE', 'public.t', 'deny');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('SELECT CASCADE', 'public.t', 'deny');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DELETE WITHOUT WHERE CASCADE', 'public.t', 'deny');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('', 'public.t', 'deny');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy(NULL, 'public.t', 'deny');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*), max(id) FROM agent_guard.policies;

-- object patterns: not empty, no spaces, at most 256 characters
SELECT agent_guard.set_policy('DROP TABLE', '', 'deny');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DROP TABLE', 'public. orders', 'deny');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DROP TABLE', E'public.\torders', 'deny');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DROP TABLE', 'public.' || repeat('x', 250), 'deny');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DROP TABLE', NULL, 'deny');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*), max(id) FROM agent_guard.policies;

-- actions; trash only for DROP TABLE
SELECT agent_guard.set_policy('DROP TABLE', 'public.t', 'block');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DROP TABLE', 'public.t', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('TRUNCATE TABLE', 'public.t', 'trash');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DESTRUCTIVE', 'public.t', 'trash');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DROP TABLE CASCADE', 'public.t', 'trash');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*), max(id) FROM agent_guard.policies;

-- max_rows: zero or more, and only where rows are counted
SELECT agent_guard.set_policy('DELETE', 'public.t', 'allow', max_rows => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('SELECT', 'public.t', 'allow', max_rows => 10);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DROP TABLE', 'public.t', 'allow', max_rows => 10);
\echo :LAST_ERROR_SQLSTATE
-- approvals_required: 1 to 10
SELECT agent_guard.set_policy('DROP TABLE', 'public.t', 'require_approval', approvals_required => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DROP TABLE', 'public.t', 'require_approval', approvals_required => 11);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DROP TABLE', 'public.t', 'require_approval', approvals_required => NULL);
\echo :LAST_ERROR_SQLSTATE
-- the agent must be a registered agent
SELECT agent_guard.set_policy('DELETE', '*', 'deny', 'regress_policy_input_human');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_policy('DELETE', '*', 'deny', 'regress_policy_input_nosuchrole');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*), max(id) FROM agent_guard.policies;

-- drop_policy
SELECT agent_guard.drop_policy(9999);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.drop_policy(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*), max(id) FROM agent_guard.policies;

-- valid spellings are stored canonically
SELECT agent_guard.set_policy('drop   table', 'public.t', 'deny') AS drop_table;
SELECT agent_guard.set_policy(E' delete\twithout  where ', 'public.t', 'deny') AS delete_without_where;
SELECT agent_guard.set_policy('DROP TABLE CASCADE', 'public.t', 'deny') AS drop_table_cascade;
SELECT agent_guard.set_policy('truncate table cascade', 'public.t', 'deny') AS truncate_cascade;
SELECT agent_guard.set_policy('write', 'public.t', 'allow', max_rows => 0) AS write_group;
SELECT agent_guard.set_policy('DROP TABLE', 'public.' || repeat('x', 249), 'trash') AS long_pattern;
SELECT agent_guard.set_policy('DROP TABLE', 'public.t', 'require_approval', approvals_required => 10)
  AS same_as_drop_table;
SELECT id, agent, command, length(object_pattern) AS pattern_length, action, max_rows, approvals_required
  FROM agent_guard.policies WHERE id > 6 ORDER BY id;

-- set_policy() is an upsert on (agent, command, pattern): same id, new action
SELECT agent_guard.set_policy('DELETE', 'public.t', 'deny', note => 'first') AS first;
SELECT agent_guard.set_policy('Delete', 'public.t', 'allow', max_rows => 5, note => 'second') AS same;
SELECT agent_guard.set_policy('DELETE', 'public.t', 'deny', 'regress_policy_input_bot') AS for_the_agent;
SELECT agent_guard.set_policy('DELETE', 'public.t*', 'deny') AS other_pattern;
SELECT id, agent, command, object_pattern, action, max_rows, note
  FROM agent_guard.policies WHERE command = 'DELETE' ORDER BY id;
SELECT count(*) FROM agent_guard.policies WHERE command = 'DELETE' AND object_pattern = 'public.t';
-- a refused update leaves the stored policy as it was
SELECT agent_guard.set_policy('DELETE', 'public.t', 'trash');
\echo :LAST_ERROR_SQLSTATE
SELECT id, action, max_rows, note FROM agent_guard.policies
 WHERE command = 'DELETE' AND object_pattern = 'public.t' AND agent IS NULL;
-- drop_policy removes exactly one policy
SELECT count(*), max(id) FROM agent_guard.policies;
SELECT agent_guard.drop_policy(id) FROM agent_guard.policies
 WHERE command = 'DELETE' AND object_pattern = 'public.t*';
SELECT count(*), max(id) FROM agent_guard.policies;
-- dropping it again
SELECT agent_guard.drop_policy(17);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*), max(id) FROM agent_guard.policies;

SELECT agent_guard.drop_policy(16);
DROP ROLE regress_policy_input_bot;
DROP ROLE regress_policy_input_human;
