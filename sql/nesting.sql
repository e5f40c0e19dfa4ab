-- A parked statement is stored as the statement the client sent, with the
-- nested one that needs approval, however deep it ran; an error caught in
-- a PL/pgSQL block or rolled back to a savepoint does not leave the guard
-- believing later top-level statements are nested.
DROP EXTENSION agent_guard;
CREATE EXTENSION agent_guard;
CREATE ROLE regress_nesting_bot LOGIN;
CREATE TABLE public.nesting_items (id int);
INSERT INTO public.nesting_items VALUES (1), (2);
GRANT ALL ON public.nesting_items TO regress_nesting_bot;
CREATE FUNCTION public.nesting_purge() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM public.nesting_items;
	RETURN 1;
END $$;
SET client_min_messages = error;
SELECT agent_guard.register_agent('regress_nesting_bot');
RESET client_min_messages;
\set VERBOSITY sqlstate

SET SESSION AUTHORIZATION regress_nesting_bot;
BEGIN;
-- parked inside a function, the error caught by an exception block
DO $$
BEGIN
	PERFORM public.nesting_purge();
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE 'caught %', SQLSTATE;
END $$;
-- parked inside a function, rolled back to a savepoint
SAVEPOINT s;
SELECT public.nesting_purge();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- at top level again: stored alone, not as nested in what came before
DELETE FROM public.nesting_items WHERE id > 0 OR true;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET SESSION AUTHORIZATION;

SELECT id, statement, nested_statement FROM agent_guard.requests ORDER BY id;
SELECT count(*) AS items FROM public.nesting_items;

SELECT agent_guard.unregister_agent('regress_nesting_bot');
DROP FUNCTION public.nesting_purge();
DROP TABLE public.nesting_items;
DROP ROLE regress_nesting_bot;
