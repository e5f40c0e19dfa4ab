/*-------------------------------------------------------------------------
 *
 * breaker.c
 *	  The circuit breaker (an agent refused too often is stopped from
 *	  writing) and the kill switch (freeze: an agent is stopped entirely).
 *
 * Breaker state lives in shared memory, shared by all sessions of the
 * cluster and reset by a restart; refusals are counted over a sliding
 * window (the previous window's count, weighted by how much of it still
 * overlaps, plus the current one's).  Freezing is stored with the agent's
 * registration, so it holds in every database and survives restarts.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ag_reset_breaker);
PG_FUNCTION_INFO_V1(ag_breaker_tripped_sql);
PG_FUNCTION_INFO_V1(ag_freeze);
PG_FUNCTION_INFO_V1(ag_unfreeze);

/* The entry of an agent, created if asked; caller holds the lock exclusively. */
static AgBreaker *
ag_breaker_entry(Oid agent, bool create)
{
	AgBreaker  *free_entry = NULL;
	AgBreaker  *oldest = NULL;
	int			i;

	for (i = 0; i < AG_MAX_BREAKERS; i++)
	{
		AgBreaker  *entry = &ag_shared->breakers[i];

		if (entry->agent == agent)
			return entry;
		if (entry->agent == InvalidOid && free_entry == NULL)
			free_entry = entry;
		if (!entry->tripped && (oldest == NULL || entry->window_start < oldest->window_start))
			oldest = entry;
	}
	if (!create)
		return NULL;
	/* full: the quietest untripped agent gives up its count */
	if (free_entry == NULL)
		free_entry = oldest;
	if (free_entry == NULL)
		return NULL;
	memset(free_entry, 0, sizeof(AgBreaker));
	free_entry->agent = agent;
	free_entry->window_start = GetCurrentTimestamp();
	return free_entry;
}

/*
 * Count one refusal of an agent.  Returns true when this refusal trips its
 * breaker (breaker_threshold refusals within breaker_window).
 */
bool
ag_breaker_note_refusal(Oid agent)
{
	AgBreaker  *entry;
	TimestampTz now = GetCurrentTimestamp();
	int64		window_us = (int64) ag_breaker_window * USECS_PER_SEC;
	double		overlap;
	bool		tripped = false;

	if (ag_shared == NULL || !OidIsValid(agent))
		return false;
	LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
	entry = ag_breaker_entry(agent, true);
	if (entry != NULL && !entry->tripped)
	{
		int64		elapsed = now - entry->window_start;

		if (elapsed >= window_us)
		{
			entry->previous = elapsed >= 2 * window_us ? 0 : entry->current;
			entry->current = 0;
			entry->window_start += (elapsed / window_us) * window_us;
			elapsed = now - entry->window_start;
		}
		entry->current++;
		overlap = 1.0 - (double) elapsed / (double) window_us;
		if (entry->previous * overlap + entry->current >= ag_breaker_threshold)
		{
			entry->tripped = true;
			entry->tripped_at = now;
			tripped = true;
		}
	}
	LWLockRelease(ag_shared->lock);
	return tripped;
}

bool
ag_breaker_tripped(Oid agent)
{
	AgBreaker  *entry;
	bool		tripped = false;

	if (ag_shared == NULL)
		return false;
	LWLockAcquire(ag_shared->lock, LW_SHARED);
	entry = ag_breaker_entry(agent, false);
	if (entry)
		tripped = entry->tripped;
	LWLockRelease(ag_shared->lock);
	return tripped;
}

/* Is any agent guarding this session tripped? */
Oid
ag_session_breaker_tripped(void)
{
	int			n;
	const Oid  *agents = ag_session_agents(&n);
	int			i;

	for (i = 0; i < n; i++)
		if (ag_breaker_tripped(agents[i]))
			return agents[i];
	return InvalidOid;
}

/* Record an alert (a trip, a freeze) with NOTIFY agent_guard_alert. */
void
ag_alert(const char *command, const char *decision, Oid agent, const char *reason,
		 bool at_commit)
{
	AgEvent		event;

	memset(&event, 0, sizeof(event));
	event.command = command;
	event.objects = list_make1(makeString(ag_role_name(agent)));
	event.decision = decision;
	event.reason = reason;
	event.rows = -1;
	event.agent = ag_role_name(agent);
	event.alert = true;
	if (at_commit)
	{
		event.actor = GetUserNameFromId(GetSessionUserId(), true);
		ag_record_at_commit(&event);
	}
	else
		ag_record_event(&event, true);
}

/* reset_breaker(agent regrole) */
Datum
ag_reset_breaker(PG_FUNCTION_ARGS)
{
	Oid			agent;
	AgBreaker  *entry;
	bool		was_tripped = false;

	ag_require_not_agent("agent_guard.reset_breaker()");
	agent = ag_registered_agent_argument(fcinfo);
	LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
	entry = ag_breaker_entry(agent, false);
	if (entry)
	{
		was_tripped = entry->tripped;
		memset(entry, 0, sizeof(AgBreaker));
	}
	LWLockRelease(ag_shared->lock);
	ag_log_change("RESET BREAKER", ag_role_name(agent),
				  was_tripped ? "the breaker was tripped" : "the breaker was not tripped", 0);
	PG_RETURN_BOOL(was_tripped);
}

/* breaker_tripped(agent regrole): for agent_activity */
Datum
ag_breaker_tripped_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ag_breaker_tripped(PG_GETARG_OID(0)));
}

/* End the sessions whose login is the agent or one of its members. */
static int64
ag_terminate_agent_sessions(Oid agent)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(agent)};
	int64		terminated;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT pg_catalog.pg_terminate_backend(a.pid)"
							  " FROM pg_catalog.pg_stat_activity a"
							  " JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.usesysid"
							  " WHERE a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()"
							  "  AND (a.usesysid OPERATOR(pg_catalog.=) $1 OR (NOT r.rolsuper AND"
							  "   pg_catalog.pg_has_role(a.usesysid, $1, 'MEMBER')))",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not terminate the agent's sessions");
	terminated = (int64) SPI_processed;
	SPI_finish();
	return terminated;
}

/* freeze(agent regrole) RETURNS bigint: sessions terminated */
Datum
ag_freeze(PG_FUNCTION_ARGS)
{
	Oid			agent;
	int64		terminated;

	ag_require_not_agent("agent_guard.freeze()");
	agent = ag_registered_agent_argument(fcinfo);
	ag_set_agent_label(agent, ag_role_mode(agent) == AG_MODE_MONITOR ? "monitor" : "enforce", true);
	terminated = ag_terminate_agent_sessions(agent);
	ag_alert("FREEZE", "agent_frozen", agent,
			 psprintf("frozen by %s; %lld sessions terminated",
					  GetUserNameFromId(GetSessionUserId(), true), (long long) terminated),
			 true);
	PG_RETURN_INT64(terminated);
}

/* unfreeze(agent regrole) */
Datum
ag_unfreeze(PG_FUNCTION_ARGS)
{
	Oid			agent;

	ag_require_not_agent("agent_guard.unfreeze()");
	agent = ag_registered_agent_argument(fcinfo);
	if (!ag_role_frozen(agent))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("agent \"%s\" is not frozen", ag_role_name(agent))));
	ag_set_agent_label(agent, ag_role_mode(agent) == AG_MODE_MONITOR ? "monitor" : "enforce", false);
	ag_alert("UNFREEZE", "agent_unfrozen", agent,
			 psprintf("unfrozen by %s", GetUserNameFromId(GetSessionUserId(), true)), true);
	PG_RETURN_VOID();
}
