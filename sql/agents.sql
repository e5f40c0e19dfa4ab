-- Registering, changing and removing agents.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_agents_bot LOGIN;
CREATE ROLE regress_agents_other LOGIN;
CREATE ROLE regress_agents_admin LOGIN;
GRANT USAGE ON SCHEMA agent_guard TO regress_agents_admin, regress_agents_bot;
GRANT EXECUTE ON FUNCTION agent_guard.register_agent(regrole, text),
	agent_guard.unregister_agent(regrole),
	agent_guard.set_agent_mode(regrole, text)
	TO regress_agents_admin, regress_agents_bot;

-- nobody is an agent yet
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;

-- a granted admin role registers agents (SECURITY DEFINER functions)
SET ROLE regress_agents_admin;
SELECT agent_guard.register_agent('regress_agents_bot');
SELECT agent_guard.register_agent('regress_agents_other', 'monitor');
RESET ROLE;
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;

-- registering again with the same mode says so; with another mode changes it
SELECT agent_guard.register_agent('regress_agents_other', 'monitor');
SELECT agent_guard.set_agent_mode('regress_agents_other', 'enforce');
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;

-- bad input changes nothing
SELECT agent_guard.register_agent('regress_agents_bot', 'audit');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.register_agent(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.register_agent('regress_agents_nosuchrole');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_agent_mode('regress_agents_admin', 'monitor');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_agent_mode('regress_agents_bot', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.unregister_agent('regress_agents_admin');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.register_agent(current_user::regrole);
\echo :LAST_ERROR_SQLSTATE
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;

-- an agent cannot register, unregister or change agents, whatever is granted
SET ROLE regress_agents_bot;
SELECT agent_guard.unregister_agent('regress_agents_bot');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.register_agent('regress_agents_admin');
\echo :LAST_ERROR_SQLSTATE
SELECT agent_guard.set_agent_mode('regress_agents_bot', 'monitor');
\echo :LAST_ERROR_SQLSTATE
SECURITY LABEL FOR agent_guard ON ROLE regress_agents_bot IS NULL;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;

-- the label provider checks its labels
SECURITY LABEL FOR agent_guard ON ROLE regress_agents_admin IS 'sometimes';
\echo :LAST_ERROR_SQLSTATE
SECURITY LABEL FOR agent_guard ON TABLE agent_guard.policies IS 'enforce';
\echo :LAST_ERROR_SQLSTATE

-- unregistering lifts the guard at once
SELECT agent_guard.unregister_agent('regress_agents_other');
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;

-- dropping the role drops its registration
DROP ROLE regress_agents_other;
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;

REVOKE ALL ON SCHEMA agent_guard FROM regress_agents_admin, regress_agents_bot;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_guard FROM regress_agents_admin, regress_agents_bot;
DROP ROLE regress_agents_bot;
DROP ROLE regress_agents_admin;
SELECT count(*) FROM agent_guard.agents;
