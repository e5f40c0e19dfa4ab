-- An agent cannot escape the guard through SET ROLE, SECURITY DEFINER
-- functions or role membership; unregistering and switching modes work.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_escape_bot LOGIN;
CREATE ROLE regress_escape_helper NOLOGIN;
CREATE ROLE regress_escape_owner NOLOGIN;
CREATE ROLE regress_escape_human LOGIN;
CREATE ROLE regress_escape_group NOLOGIN;
CREATE ROLE regress_escape_mid NOLOGIN;
CREATE ROLE regress_escape_member1 LOGIN;
CREATE ROLE regress_escape_member2 LOGIN;
CREATE ROLE regress_escape_noinherit LOGIN NOINHERIT;
GRANT regress_escape_helper TO regress_escape_bot;
GRANT regress_escape_group TO regress_escape_member1;
GRANT regress_escape_group TO regress_escape_mid;
GRANT regress_escape_mid TO regress_escape_member2;
GRANT regress_escape_bot TO regress_escape_noinherit;

-- One table per role that may drop it: PostgreSQL itself would allow each DROP.
CREATE TABLE public.escape_helper_t (id int);
ALTER TABLE public.escape_helper_t OWNER TO regress_escape_helper;
CREATE TABLE public.escape_owner_t (id int);
ALTER TABLE public.escape_owner_t OWNER TO regress_escape_owner;
CREATE TABLE public.escape_bot_t (id int);
ALTER TABLE public.escape_bot_t OWNER TO regress_escape_bot;
CREATE TABLE public.escape_group_t (id int);
ALTER TABLE public.escape_group_t OWNER TO regress_escape_group;
INSERT INTO public.escape_helper_t VALUES (1), (2);
INSERT INTO public.escape_owner_t VALUES (1), (2);
INSERT INTO public.escape_bot_t VALUES (1), (2);
INSERT INTO public.escape_group_t VALUES (1), (2);

-- A SECURITY DEFINER function owned by a non-agent that drops what it is told.
CREATE FUNCTION public.escape_drop(t text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
	EXECUTE format('DROP TABLE %s', t);
END $$;
ALTER FUNCTION public.escape_drop(text) OWNER TO regress_escape_owner;

SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_escape_bot');
SELECT agent_guard.register_agent('regress_escape_group');
RESET client_min_messages;
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;

-- 1. The agent logs in and switches to a role it is a member of: the session
-- user is still the agent, so the session is still guarded.
SET SESSION AUTHORIZATION regress_escape_bot;
SET ROLE regress_escape_helper;
SELECT session_user, current_user;
DROP TABLE public.escape_helper_t;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE public.escape_helper_t;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM public.escape_helper_t;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.escape_helper_t;

-- 2. A login that is not an agent switches to an agent role: the current user
-- is the agent, so the session is guarded until it switches back.
SET ROLE regress_escape_bot;
SELECT session_user <> current_user AS switched, current_user;
DROP TABLE public.escape_bot_t;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) FROM public.escape_bot_t;

-- 3. The agent calls a SECURITY DEFINER function owned by a non-agent: inside
-- it the current user is the owner, but the session user is the agent.
SET SESSION AUTHORIZATION regress_escape_bot;
SELECT public.escape_drop('public.escape_owner_t');
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.escape_owner_t;
-- The same through SET ROLE to the agent from a login that is not one.
SET ROLE regress_escape_bot;
SELECT public.escape_drop('public.escape_owner_t');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) FROM public.escape_owner_t;

-- 4. The registered agent is a group: its members are guarded, directly and
-- through two levels of membership, and the agent named is the group.
SET SESSION AUTHORIZATION regress_escape_member1;
DROP TABLE public.escape_group_t;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_escape_member2;
DROP TABLE public.escape_group_t;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM public.escape_group_t;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.escape_group_t;
-- A member that does not inherit the agent's privileges is guarded all the same.
SET SESSION AUTHORIZATION regress_escape_noinherit;
DROP TABLE public.escape_bot_t;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.escape_bot_t;

-- A login that is in none of these groups is not guarded.
CREATE TABLE public.escape_human_t (id int);
ALTER TABLE public.escape_human_t OWNER TO regress_escape_human;
SET SESSION AUTHORIZATION regress_escape_human;
DROP TABLE public.escape_human_t;
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM pg_class WHERE relname = 'escape_human_t';

-- 5. set_agent_mode switches between enforce and monitor.
SELECT agent_guard.set_agent_mode('regress_escape_bot', 'monitor');
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;
SET SESSION AUTHORIZATION regress_escape_bot;
DELETE FROM public.escape_bot_t;
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.escape_bot_t;
SELECT agent_guard.set_agent_mode('regress_escape_bot', 'enforce');
SET SESSION AUTHORIZATION regress_escape_bot;
INSERT INTO public.escape_bot_t VALUES (3);
DROP TABLE public.escape_bot_t;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM public.escape_bot_t;

-- 6. unregister_agent removes the guard: the same statements now run.
SELECT agent_guard.unregister_agent('regress_escape_bot');
SELECT agent_guard.unregister_agent('regress_escape_group');
SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text;
SET SESSION AUTHORIZATION regress_escape_bot;
SET ROLE regress_escape_helper;
DROP TABLE public.escape_helper_t;
RESET ROLE;
SELECT public.escape_drop('public.escape_owner_t');
DROP TABLE public.escape_bot_t;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_escape_member2;
DROP TABLE public.escape_group_t;
RESET SESSION AUTHORIZATION;
SELECT relname FROM pg_class WHERE relname LIKE 'escape\_%' ORDER BY relname;

DROP FUNCTION public.escape_drop(text);
DROP ROLE regress_escape_bot, regress_escape_helper, regress_escape_owner,
	regress_escape_human, regress_escape_group, regress_escape_mid,
	regress_escape_member1, regress_escape_member2, regress_escape_noinherit;
