-- What CREATE EXTENSION installs: the schema, the defaults, the settings,
-- and no privilege for PUBLIC.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
SELECT extname, extrelocatable, extnamespace::regnamespace
  FROM pg_extension WHERE extname = 'agent_guard';
SELECT id, agent, command, object_pattern, action, max_rows, approvals_required, enabled, note
  FROM agent_guard.policies ORDER BY id;

-- nothing is granted to PUBLIC
SELECT has_schema_privilege('public', 'agent_guard', 'USAGE') AS schema_usage;
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p WHERE p.pronamespace = 'agent_guard'::regnamespace ORDER BY p.proname;
SELECT c.relname, has_table_privilege('public', c.oid, 'SELECT') AS public_select
  FROM pg_class c WHERE c.relnamespace = 'agent_guard'::regnamespace
   AND c.relkind IN ('r', 'v') ORDER BY c.relname;

-- administration functions run as the extension owner, with a safe search_path
SELECT p.proname, p.prosecdef, p.proconfig
  FROM pg_proc p WHERE p.pronamespace = 'agent_guard'::regnamespace ORDER BY p.proname;

-- the policy table is dumped with the database
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS t(oid)
  JOIN pg_class c ON c.oid = t.oid
 WHERE e.extname = 'agent_guard' ORDER BY c.relname;

-- settings: all under the reserved agent_guard prefix
SELECT name, setting, unit, context, vartype
  FROM pg_settings WHERE name LIKE 'agent_guard.%' ORDER BY name;
SET agent_guard.no_such_setting = 1;
\echo :LAST_ERROR_SQLSTATE
SET agent_guard.log_statement = 'sometimes';
\echo :LAST_ERROR_SQLSTATE
SET agent_guard.enabled = off;
\echo :LAST_ERROR_SQLSTATE
