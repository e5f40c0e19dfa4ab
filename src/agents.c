/*-------------------------------------------------------------------------
 *
 * agents.c
 *	  Which roles are agents, and whether the current session is guarded.
 *
 * Agents are roles, and roles belong to the whole cluster, so the registry
 * lives in a shared catalog: a security label of provider "agent_guard" on
 * the role, whose value is the mode.  Every database of the cluster, with or
 * without the extension, and every standby sees the same registry.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_shseclabel.h"
#include "commands/seclabel.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#define AG_LABEL_PROVIDER "agent_guard"

typedef struct AgAgent
{
	Oid			roleid;
	AgMode		mode;
	bool		frozen;			/* agent_guard.freeze(): refuse everything */
} AgAgent;

#define AG_FROZEN_PREFIX "frozen:"

/* Registered agents, loaded from pg_shseclabel on demand. */
static AgAgent *agents = NULL;
static int	agent_count = 0;
static bool agents_valid = false;
static uint64 agents_invalidations = 0;

/*
 * Bumped by every invalidation that can change who is guarded: the
 * registry itself, role membership, roles.
 */
static uint64 guard_generation = 1;

/* The agent whose approved request approve_pending() is replaying. */
static Oid	replay_agent = InvalidOid;

/*
 * The verdict for one (session, outer, current user, replayed agent), reused
 * until stale.
 */
static Oid	cached_session_user = InvalidOid;
static Oid	cached_outer_user = InvalidOid;
static Oid	cached_current_user = InvalidOid;
static Oid	cached_replay_agent = InvalidOid;
static uint64 cached_generation = 0;
static AgMode cached_mode = AG_MODE_NONE;
static bool cached_frozen = false;
static Oid	cached_agent = InvalidOid;
static Oid *cached_agent_set = NULL;
static int	cached_agent_set_len = 0;

static void ag_agents_relcache_callback(Datum arg, Oid relid);
static void ag_agents_syscache_callback(Datum arg, int cacheid, uint32 hashvalue);
static void ag_relabel_hook(const ObjectAddress *object, const char *seclabel);

void
ag_agents_init(void)
{
	CacheRegisterRelcacheCallback(ag_agents_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, ag_agents_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, ag_agents_syscache_callback, (Datum) 0);
	register_label_provider(AG_LABEL_PROVIDER, ag_relabel_hook);
}

static void
ag_agents_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == SharedSecLabelRelationId)
	{
		agents_valid = false;
		agents_invalidations++;
		guard_generation++;
	}
}

static void
ag_agents_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	guard_generation++;
}

AgMode
ag_parse_mode(const char *mode)
{
	if (mode == NULL)
		return AG_MODE_NONE;
	if (strncmp(mode, AG_FROZEN_PREFIX, strlen(AG_FROZEN_PREFIX)) == 0)
		mode += strlen(AG_FROZEN_PREFIX);
	if (strcmp(mode, "enforce") == 0)
		return AG_MODE_ENFORCE;
	if (strcmp(mode, "monitor") == 0)
		return AG_MODE_MONITOR;
	return AG_MODE_NONE;
}

/* Read the registry from the shared catalog. */
static void
ag_load_agents(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	int			capacity = 8;
	AgAgent    *loaded;
	int			n = 0;
	uint64		invalidations_before = agents_invalidations;

	loaded = MemoryContextAlloc(TopMemoryContext, capacity * sizeof(AgAgent));
	rel = table_open(SharedSecLabelRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_shseclabel_classoid,
				BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(AuthIdRelationId));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_shseclabel form = (Form_pg_shseclabel) GETSTRUCT(tuple);
		bool		isnull;
		Datum		provider;
		Datum		label;
		char	   *label_text;
		AgMode		mode;

		provider = heap_getattr(tuple, Anum_pg_shseclabel_provider,
								RelationGetDescr(rel), &isnull);
		if (isnull || strcmp(TextDatumGetCString(provider), AG_LABEL_PROVIDER) != 0)
			continue;
		label = heap_getattr(tuple, Anum_pg_shseclabel_label,
							 RelationGetDescr(rel), &isnull);
		label_text = isnull ? NULL : TextDatumGetCString(label);
		mode = ag_parse_mode(label_text);
		/* An unreadable label still marks an agent: fail closed. */
		if (mode == AG_MODE_NONE)
			mode = AG_MODE_ENFORCE;
		if (n == capacity)
		{
			capacity *= 2;
			loaded = repalloc(loaded, capacity * sizeof(AgAgent));
		}
		loaded[n].roleid = form->objoid;
		loaded[n].mode = mode;
		loaded[n].frozen = label_text != NULL &&
			strncmp(label_text, AG_FROZEN_PREFIX, strlen(AG_FROZEN_PREFIX)) == 0;
		n++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (agents)
		pfree(agents);
	agents = loaded;
	agent_count = n;
	/* An invalidation that arrived while we read means: read again next time. */
	agents_valid = (invalidations_before == agents_invalidations);
}

static void
ag_ensure_agents(void)
{
	if (!agents_valid)
		ag_load_agents();
}

/* Is role a registered agent or a member, direct or indirect, of one? */
static bool
ag_role_belongs_to(Oid roleid, Oid agent)
{
	return roleid == agent || is_member_of_role_nosuper(roleid, agent);
}

/*
 * The guard verdict for the current session: the strictest mode among the
 * agents that its session user, its SET ROLE role or its current user
 * belongs to (so a SECURITY DEFINER function called after SET ROLE is no
 * way out).  Cached per user triple, so a non-agent pays three comparisons
 * per statement.
 */
AgMode
ag_session_mode(void)
{
	Oid			session_user = GetSessionUserId();
	Oid			outer_user = GetOuterUserId();
	Oid			current_user = GetUserId();
	int			i;

	if (session_user == cached_session_user &&
		current_user == cached_current_user &&
		outer_user == cached_outer_user &&
		replay_agent == cached_replay_agent &&
		cached_generation == guard_generation)
		return cached_mode;

	ag_ensure_agents();

	cached_mode = AG_MODE_NONE;
	cached_frozen = false;
	cached_agent = InvalidOid;
	cached_agent_set_len = 0;
	if (cached_agent_set == NULL && agent_count > 0)
		cached_agent_set = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * agent_count);
	else if (agent_count > 0)
		cached_agent_set = repalloc(cached_agent_set, sizeof(Oid) * agent_count);

	for (i = 0; i < agent_count; i++)
	{
		Oid			agent = agents[i].roleid;

		if (agent == replay_agent ||
			(OidIsValid(current_user) && ag_role_belongs_to(current_user, agent)) ||
			(OidIsValid(outer_user) && ag_role_belongs_to(outer_user, agent)) ||
			(OidIsValid(session_user) && ag_role_belongs_to(session_user, agent)))
		{
			cached_agent_set[cached_agent_set_len++] = agent;
			if (agents[i].frozen)
				cached_frozen = true;
			if (agents[i].mode > cached_mode)
			{
				cached_mode = agents[i].mode;
				cached_agent = agent;
			}
		}
	}

	cached_session_user = session_user;
	cached_outer_user = outer_user;
	cached_current_user = current_user;
	cached_replay_agent = replay_agent;
	cached_generation = guard_generation;
	return cached_mode;
}

/*
 * While an approver's session replays an agent's request, that agent
 * guards the session too: functions owned by others, triggers and a role
 * the agent had SET ROLE to are judged as the agent's own.
 */
void
ag_set_replay_agent(Oid agent)
{
	replay_agent = agent;
}

/* Is one of the agents guarding this session frozen? */
bool
ag_session_frozen(void)
{
	(void) ag_session_mode();
	return cached_frozen;
}

/* Is this registered agent frozen? */
bool
ag_role_frozen(Oid roleid)
{
	int			i;

	ag_ensure_agents();
	for (i = 0; i < agent_count; i++)
		if (agents[i].roleid == roleid)
			return agents[i].frozen;
	return false;
}

/* The agent role the session is reported as (the one deciding its mode). */
Oid
ag_session_agent(void)
{
	(void) ag_session_mode();
	return cached_agent;
}

/* Is agent one of the agents that guard the current session? */
bool
ag_session_guarded_by(Oid agent)
{
	int			i;

	(void) ag_session_mode();
	for (i = 0; i < cached_agent_set_len; i++)
		if (cached_agent_set[i] == agent)
			return true;
	return false;
}

/* The agents guarding the current session, for agent-specific policies. */
const Oid *
ag_session_agents(int *n_agents)
{
	(void) ag_session_mode();
	*n_agents = cached_agent_set_len;
	return cached_agent_set;
}

/* The registered agents a role is, or is a member of. */
Oid *
ag_agents_of_role(Oid roleid, int *n_agents)
{
	Oid		   *result;
	int			i;

	ag_ensure_agents();
	result = palloc(sizeof(Oid) * (agent_count + 1));
	*n_agents = 0;
	for (i = 0; i < agent_count; i++)
		if (ag_role_belongs_to(roleid, agents[i].roleid))
			result[(*n_agents)++] = agents[i].roleid;
	return result;
}

bool
ag_role_is_agent(Oid roleid)
{
	return ag_role_mode(roleid) != AG_MODE_NONE;
}

/* Mode a role is registered with itself, not through membership. */
AgMode
ag_role_mode(Oid roleid)
{
	int			i;

	ag_ensure_agents();
	for (i = 0; i < agent_count; i++)
		if (agents[i].roleid == roleid)
			return agents[i].mode;
	return AG_MODE_NONE;
}

static bool
ag_role_guarded(Oid roleid)
{
	int			i;

	if (!OidIsValid(roleid))
		return false;
	ag_ensure_agents();
	for (i = 0; i < agent_count; i++)
		if (ag_role_belongs_to(roleid, agents[i].roleid))
			return true;
	return false;
}

/*
 * Is whoever called us an agent?  Used inside SECURITY DEFINER functions,
 * where the current user is the owner: look at the session user and at the
 * role set with SET ROLE instead.
 */
bool
ag_caller_is_agent(void)
{
	return OidIsValid(replay_agent) ||
		ag_role_guarded(GetSessionUserId()) ||
		ag_role_guarded(GetOuterUserId()) ||
		ag_role_guarded(GetUserId());
}

/* Register (mode), change, freeze or, with mode NULL, remove an agent. */
void
ag_set_agent_label(Oid roleid, const char *mode, bool frozen)
{
	ObjectAddress address;

	/* labels are written like any row: not on a standby, not read-only */
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot change agent_guard's agents in a read-only transaction"),
				 RecoveryInProgress() ?
				 errhint("This server is a standby: make the change on the primary.") : 0));
	ObjectAddressSet(address, AuthIdRelationId, roleid);
	SetSecurityLabel(&address, AG_LABEL_PROVIDER,
					 mode && frozen ? psprintf(AG_FROZEN_PREFIX "%s", mode) : mode);
	CacheInvalidateRelcacheByRelid(SharedSecLabelRelationId);
}

/*
 * SECURITY LABEL FOR agent_guard is how pg_dumpall carries the registry;
 * only a superuser who is not an agent may use it directly.
 */
static void
ag_relabel_hook(const ObjectAddress *object, const char *seclabel)
{
	if (object->classId != AuthIdRelationId)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("agent_guard labels apply only to roles")));
	if (seclabel != NULL && ag_parse_mode(seclabel) == AG_MODE_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid agent_guard label \"%s\"", seclabel),
				 errhint("Valid labels are \"enforce\" and \"monitor\".")));
	if (!superuser() || ag_caller_is_agent())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set agent_guard labels"),
				 errhint("Use agent_guard.register_agent() as a superuser who is not an agent.")));
	CacheInvalidateRelcacheByRelid(SharedSecLabelRelationId);
}
