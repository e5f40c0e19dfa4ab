/*-------------------------------------------------------------------------
 *
 * policy.c
 *	  The per-backend policy cache, glob matching and precedence.
 *
 * Policies are read from agent_guard.policies once and kept until a
 * relcache invalidation of that table (sent by its statement trigger at
 * commit) says they changed.  Lookups go through two hash tables, so their
 * cost depends on the policies that could match, not on how many exist.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

typedef struct AgPolicy
{
	int64		id;
	Oid			agent;			/* InvalidOid: every agent */
	char	   *command;
	char	   *pattern;
	int			pattern_rank;	/* 0 "*", 1 with wildcards, 2 exact */
	AgAction	action;
	int64		max_rows;
	int			approvals_required;
} AgPolicy;

/* Policies with an exact pattern, by hash of (command, pattern). */
typedef struct AgExactEntry
{
	uint32		key;
	List	   *policies;
} AgExactEntry;

/*
 * Policies with a wildcard pattern, by command: all of them, and those that
 * the affix index below cannot find.
 */
typedef struct AgWildEntry
{
	char		command[NAMEDATALEN];
	List	   *policies;
	List	   *unindexed;
} AgWildEntry;

/*
 * With more wildcard policies than this under one command, they are found
 * through their literal prefix ("app_1.*", "public.tmp_*") or, for "*x"
 * patterns, their literal suffix, instead of trying each one.
 */
#define AG_WILD_SCAN_MAX 16

/* Where the extension lives in this database, if it is installed. */
static bool extension_valid = false;
static Oid	extension_oid = InvalidOid;
static Oid	extension_owner = InvalidOid;
static Oid	schema_oid = InvalidOid;
static Oid	policies_relid = InvalidOid;

static MemoryContext policy_context = NULL;
static bool policies_valid = false;
static uint64 policy_invalidations = 0;
static HTAB *exact_policies = NULL;
static HTAB *wild_policies = NULL;
static HTAB *affix_policies = NULL;
static HTAB *decision_cache = NULL;	/* see ag_policy_decide() */
static int	cached_decisions = 0;
static bool execute_policies = false;

static void ag_policy_relcache_callback(Datum arg, Oid relid);

void
ag_policy_init(void)
{
	CacheRegisterRelcacheCallback(ag_policy_relcache_callback, (Datum) 0);
}

static void
ag_policy_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == policies_relid)
	{
		policies_valid = false;
		policy_invalidations++;
		extension_valid = false;
	}
}

void
ag_invalidate_policies(void)
{
	ag_policy_relcache_callback((Datum) 0, InvalidOid);
}

/* Read the extension's OID and owner from pg_extension. */
static void
ag_lookup_extension(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	extension_oid = InvalidOid;
	extension_owner = InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("agent_guard"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		Form_pg_extension form = (Form_pg_extension) GETSTRUCT(tuple);

		extension_oid = form->oid;
		extension_owner = form->extowner;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/*
 * Is the extension installed (and finished installing) in this database?
 * While CREATE EXTENSION agent_guard runs, it is treated as absent.
 */
bool
ag_extension_present(void)
{
	if (!extension_valid)
	{
		schema_oid = get_namespace_oid("agent_guard", true);
		policies_relid = OidIsValid(schema_oid) ?
			get_relname_relid("policies", schema_oid) : InvalidOid;
		if (OidIsValid(policies_relid))
			ag_lookup_extension();
		else
			extension_oid = InvalidOid;
		/* only a complete installation is remembered */
		extension_valid = OidIsValid(extension_oid);
	}
	if (!OidIsValid(extension_oid))
		return false;
	if (creating_extension && CurrentExtensionObject == extension_oid)
		return false;
	return true;
}

Oid
ag_extension_owner(void)
{
	return ag_extension_present() ? extension_owner : InvalidOid;
}

Oid
ag_schema_oid(void)
{
	return ag_extension_present() ? schema_oid : InvalidOid;
}

/* Glob match over the whole text: '*' any run of characters, '?' one. */
bool
ag_glob_match(const char *pattern, const char *text)
{
	const char *star = NULL;
	const char *resume = NULL;

	while (*text)
	{
		if (*pattern == '*')
		{
			star = pattern++;
			resume = text;
		}
		else if (*pattern == '?' || *pattern == *text)
		{
			pattern++;
			text++;
		}
		else if (star)
		{
			pattern = star + 1;
			text = ++resume;
		}
		else
			return false;
	}
	while (*pattern == '*')
		pattern++;
	return *pattern == '\0';
}

static int
ag_pattern_rank(const char *pattern)
{
	if (strcmp(pattern, "*") == 0)
		return 0;
	if (strpbrk(pattern, "*?") != NULL)
		return 1;
	return 2;
}

static uint32
ag_exact_key(const char *command, const char *object)
{
	uint32		h = hash_bytes((const unsigned char *) command, strlen(command));

	return hash_combine(h, hash_bytes((const unsigned char *) object, strlen(object)));
}

/* Key of a literal prefix ('p') or suffix ('s') of len bytes under a command. */
static uint32
ag_affix_key(char kind, const char *command, const char *affix, int len)
{
	uint32		h = hash_bytes((const unsigned char *) command, strlen(command));

	h = hash_combine(h, hash_bytes((const unsigned char *) affix, len));
	return hash_combine(h, (uint32) kind);
}

static void
ag_add_affix_policy(uint32 key, AgPolicy *policy)
{
	bool		found;
	AgExactEntry *entry = hash_search(affix_policies, &key, HASH_ENTER, &found);

	if (!found)
		entry->policies = NIL;
	entry->policies = lappend(entry->policies, policy);
}

AgAction
ag_parse_action(const char *action)
{
	if (strcmp(action, "allow") == 0)
		return AG_ACTION_ALLOW;
	if (strcmp(action, "deny") == 0)
		return AG_ACTION_DENY;
	if (strcmp(action, "require_approval") == 0)
		return AG_ACTION_REQUIRE_APPROVAL;
	if (strcmp(action, "trash") == 0)
		return AG_ACTION_TRASH;
	return (AgAction) -1;
}

const char *
ag_action_name(AgAction action)
{
	switch (action)
	{
		case AG_ACTION_ALLOW:
			return "allow";
		case AG_ACTION_DENY:
			return "deny";
		case AG_ACTION_REQUIRE_APPROVAL:
			return "require_approval";
		case AG_ACTION_TRASH:
			return "trash";
	}
	return "deny";
}

static void
ag_index_policy(AgPolicy *policy)
{
	bool		found;

	if (policy->pattern_rank == 2)
	{
		uint32		key = ag_exact_key(policy->command, policy->pattern);
		AgExactEntry *entry = hash_search(exact_policies, &key, HASH_ENTER, &found);

		if (!found)
			entry->policies = NIL;
		entry->policies = lappend(entry->policies, policy);
	}
	else
	{
		char		command[NAMEDATALEN] = {0};
		AgWildEntry *entry;

		const char *pattern = policy->pattern;
		int			prefix = strcspn(pattern, "*?");

		snprintf(command, NAMEDATALEN, "%s", policy->command);
		entry = hash_search(wild_policies, command, HASH_ENTER, &found);
		if (!found)
		{
			entry->policies = NIL;
			entry->unindexed = NIL;
		}
		entry->policies = lappend(entry->policies, policy);
		if (prefix > 0)
			ag_add_affix_policy(ag_affix_key('p', policy->command, pattern, prefix), policy);
		else if (pattern[0] == '*' && pattern[1] != '\0' && strpbrk(pattern + 1, "*?") == NULL)
			ag_add_affix_policy(ag_affix_key('s', policy->command, pattern + 1,
											 strlen(pattern + 1)), policy);
		else
			entry->unindexed = lappend(entry->unindexed, policy);
	}
	if (strcmp(policy->command, "EXECUTE") == 0 ||
		(strcmp(policy->command, "ALL") == 0 && policy->pattern_rank > 0))
		execute_policies = true;
}

/* (Re)build the cache from agent_guard.policies, as the extension owner. */
static void
ag_load_policies(void)
{
	Oid			save_userid;
	int			save_sec_context;
	uint64		invalidations_before = policy_invalidations;
	HASHCTL		ctl;

	if (policy_context == NULL)
		policy_context = AllocSetContextCreate(CacheMemoryContext,
											   "agent_guard policies",
											   ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(policy_context);
	decision_cache = NULL;
	exact_policies = NULL;
	wild_policies = NULL;
	affix_policies = NULL;
	execute_policies = false;

	ctl.keysize = sizeof(uint32);
	ctl.entrysize = sizeof(AgExactEntry);
	ctl.hcxt = policy_context;
	exact_policies = hash_create("agent_guard exact policies", 256, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	affix_policies = hash_create("agent_guard policy affixes", 256, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(AgWildEntry);
	wild_policies = hash_create("agent_guard wildcard policies", 64, &ctl,
								HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	ag_nesting++;
	PG_TRY();
	{
		uint64		i;
		int			ret;

		SetUserIdAndSecContext(extension_owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		ret = SPI_execute("SELECT id, agent::pg_catalog.oid, command, object_pattern, action,"
						  " COALESCE(max_rows, -1), approvals_required"
						  " FROM agent_guard.policies WHERE enabled",
						  false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not read agent_guard.policies: %s", SPI_result_code_string(ret));

		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			AgPolicy   *policy;
			MemoryContext old = MemoryContextSwitchTo(policy_context);
			Datum		agent;

			policy = palloc(sizeof(AgPolicy));
			policy->id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
			agent = SPI_getbinval(tuple, desc, 2, &isnull);
			policy->agent = isnull ? InvalidOid : DatumGetObjectId(agent);
			policy->command = SPI_getvalue(tuple, desc, 3);
			policy->pattern = SPI_getvalue(tuple, desc, 4);
			policy->pattern_rank = ag_pattern_rank(policy->pattern);
			policy->action = ag_parse_action(SPI_getvalue(tuple, desc, 5));
			if ((int) policy->action < 0)
				policy->action = AG_ACTION_DENY;
			policy->max_rows = DatumGetInt64(SPI_getbinval(tuple, desc, 6, &isnull));
			policy->approvals_required = DatumGetInt32(SPI_getbinval(tuple, desc, 7, &isnull));
			ag_index_policy(policy);
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_FINALLY();
	{
		ag_nesting--;
	}
	PG_END_TRY();

	policies_valid = (invalidations_before == policy_invalidations);
}

static void
ag_ensure_policies(void)
{
	if (!policies_valid || exact_policies == NULL)
		ag_load_policies();
}

bool
ag_has_execute_policies(void)
{
	if (!ag_extension_present())
		return false;
	ag_ensure_policies();
	return execute_policies;
}

static bool
ag_agent_in(Oid agent, const Oid *agents, int n_agents)
{
	int			i;

	for (i = 0; i < n_agents; i++)
		if (agents[i] == agent)
			return true;
	return false;
}

/* Rank of a policy's specificity: agent, then command, then pattern. */
static int
ag_specificity(const AgPolicy *policy, bool exact_command)
{
	return (OidIsValid(policy->agent) ? 100 : 0) +
		(exact_command ? 10 : 0) +
		policy->pattern_rank;
}

static void
ag_consider(const AgPolicy *policy, bool exact_command, const Oid *agents,
			int n_agents, const AgPolicy **best, int *best_rank, bool *best_exact)
{
	int			rank;

	if (OidIsValid(policy->agent) && !ag_agent_in(policy->agent, agents, n_agents))
		return;
	rank = ag_specificity(policy, exact_command);
	if (*best == NULL || rank > *best_rank ||
		(rank == *best_rank && policy->action > (*best)->action) ||
		(rank == *best_rank && policy->action == (*best)->action && policy->id < (*best)->id))
	{
		*best = policy;
		*best_rank = rank;
		*best_exact = exact_command;
	}
}

/* Consider every policy stored under one policy command. */
static void
ag_consider_command(const char *policy_command, bool exact_command, const char *object,
					const Oid *agents, int n_agents,
					const AgPolicy **best, int *best_rank, bool *best_exact)
{
	uint32		key = ag_exact_key(policy_command, object);
	AgExactEntry *exact = hash_search(exact_policies, &key, HASH_FIND, NULL);
	ListCell   *lc;

	if (exact)
	{
		foreach(lc, exact->policies)
		{
			AgPolicy   *policy = lfirst(lc);

			if (strcmp(policy->command, policy_command) == 0 &&
				strcmp(policy->pattern, object) == 0)
				ag_consider(policy, exact_command, agents, n_agents, best, best_rank, best_exact);
		}
	}
	if (strlen(policy_command) < NAMEDATALEN)
	{
		char		command[NAMEDATALEN] = {0};
		AgWildEntry *wild;

		snprintf(command, NAMEDATALEN, "%s", policy_command);
		wild = hash_search(wild_policies, command, HASH_FIND, NULL);
		if (wild)
		{
			int			length = strlen(object);
			int			i;

			/* few: try each; many: only those whose literal prefix or suffix fits */
			foreach(lc, list_length(wild->policies) <= AG_WILD_SCAN_MAX ?
					wild->policies : wild->unindexed)
			{
				AgPolicy   *policy = lfirst(lc);

				if (ag_glob_match(policy->pattern, object))
					ag_consider(policy, exact_command, agents, n_agents, best, best_rank, best_exact);
			}
			for (i = 0; list_length(wild->policies) > AG_WILD_SCAN_MAX && i < length; i++)
			{
				uint32		keys[2];
				int			k;

				keys[0] = ag_affix_key('p', policy_command, object, i + 1);
				keys[1] = ag_affix_key('s', policy_command, object + i, length - i);
				for (k = 0; k < 2; k++)
				{
					AgExactEntry *affix = hash_search(affix_policies, &keys[k], HASH_FIND, NULL);
					ListCell   *pc;

					if (affix == NULL)
						continue;
					foreach(pc, affix->policies)
					{
						AgPolicy   *policy = lfirst(pc);

						if (strcmp(policy->command, policy_command) == 0 &&
							ag_glob_match(policy->pattern, object))
							ag_consider(policy, exact_command, agents, n_agents,
										best, best_rank, best_exact);
					}
				}
			}
		}
	}
}

static const char *const group_policy_names[] = {
	"ALL", "READ", "WRITE", "DDL", "DESTRUCTIVE", "ADMIN"
};

/*
 * The policy decision for one pair: the most specific matching policy
 * (agent-specific over all agents, exact command over group, exact pattern
 * over wildcard over "*"), the most restrictive among equals, the lowest
 * id among identical ones.  No matching policy means deny, except for
 * session commands (SET, RESET, transaction control, function calls).
 */
static void
ag_policy_decide_uncached(const AgPair *pair, const Oid *agents, int n_agents,
						  AgDecision *decision)
{
	const AgPolicy *best = NULL;
	int			best_rank = -1;
	bool		best_exact = false;
	int			groups = ag_command_groups(pair->command);
	int			i;

	ag_consider_command(pair->command, true, pair->object, agents, n_agents,
						&best, &best_rank, &best_exact);
	for (i = 0; i < lengthof(group_policy_names); i++)
	{
		int			group = ag_group_by_name(group_policy_names[i]);

		if (groups & group)
			ag_consider_command(group_policy_names[i], false, pair->object,
								agents, n_agents, &best, &best_rank, &best_exact);
	}

	memset(decision, 0, sizeof(AgDecision));
	decision->max_rows = -1;
	decision->approvals_required = 1;
	if (best == NULL)
	{
		/* SET, RESET and transaction control are never worth a lockout */
		if (groups & AG_GROUP_SESSION)
		{
			decision->action = AG_ACTION_ALLOW;
			decision->reason = "no policy matches a session command";
			return;
		}
		decision->action = AG_ACTION_DENY;
		decision->reason = "no policy matches";
		return;
	}
	decision->action = best->action;
	decision->policy_id = best->id;
	decision->pattern = best->pattern;
	decision->policy_command = best->command;
	decision->max_rows = best->max_rows;
	decision->approvals_required = best->approvals_required;
	decision->caps_rows = best->max_rows >= 0 && ag_command_changes_rows(pair->command);
	/* the reason is written only if someone reads it (ag_explain_decision) */
	decision->reason = NULL;
	/*
	 * require_approval with max_rows: up to the cap runs, above it waits.
	 * Only for statements whose rows can be counted; a DROP or TRUNCATE
	 * still waits whatever the cap.
	 */
	if (best->action == AG_ACTION_REQUIRE_APPROVAL && decision->caps_rows)
	{
		decision->action = AG_ACTION_ALLOW;
		decision->over_cap_needs_approval = true;
	}
}

/*
 * Decisions already made in this backend, by (command, object, agents):
 * a statement repeated by an agent costs one lookup.  They live with the
 * policy cache and go when it is reloaded.
 */
typedef struct AgCachedDecision
{
	char	   *command;
	char	   *object;
	Oid		   *agents;
	int			n_agents;
	AgDecision	decision;
} AgCachedDecision;

#define AG_MAX_CACHED_DECISIONS 4096

void
ag_policy_decide(const AgPair *pair, const Oid *agents, int n_agents, AgDecision *decision)
{
	uint32		key;
	AgExactEntry *entry;
	AgCachedDecision *cached;
	ListCell   *lc;
	bool		found;
	MemoryContext old;

	ag_ensure_policies();
	key = hash_combine(ag_exact_key(pair->command, pair->object),
					   hash_bytes((const unsigned char *) agents, sizeof(Oid) * n_agents));
	if (decision_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(AgExactEntry);
		ctl.hcxt = policy_context;
		decision_cache = hash_create("agent_guard decisions", 256, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		cached_decisions = 0;
	}
	entry = hash_search(decision_cache, &key, HASH_FIND, NULL);
	if (entry)
	{
		foreach(lc, entry->policies)
		{
			cached = lfirst(lc);
			if (cached->n_agents == n_agents &&
				strcmp(cached->command, pair->command) == 0 &&
				strcmp(cached->object, pair->object) == 0 &&
				memcmp(cached->agents, agents, sizeof(Oid) * n_agents) == 0)
			{
				*decision = cached->decision;
				return;
			}
		}
	}

	ag_policy_decide_uncached(pair, agents, n_agents, decision);
	if (cached_decisions >= AG_MAX_CACHED_DECISIONS || decision->reason != NULL)
		return;

	old = MemoryContextSwitchTo(policy_context);
	cached = palloc(sizeof(AgCachedDecision));
	cached->command = pstrdup(pair->command);
	cached->object = pstrdup(pair->object);
	cached->agents = palloc(sizeof(Oid) * Max(n_agents, 1));
	memcpy(cached->agents, agents, sizeof(Oid) * n_agents);
	cached->n_agents = n_agents;
	cached->decision = *decision;
	entry = hash_search(decision_cache, &key, HASH_ENTER, &found);
	if (!found)
		entry->policies = NIL;
	entry->policies = lappend(entry->policies, cached);
	cached_decisions++;
	MemoryContextSwitchTo(old);
}

/* Write the reason of a policy decision, unless it has one. */
void
ag_explain_decision(AgDecision *decision)
{
	if (decision->reason != NULL)
		return;
	if (decision->over_cap_needs_approval)
		decision->reason = psprintf("policy %lld (%s on %s) allows up to %lld rows, more need approval",
									(long long) decision->policy_id, decision->policy_command,
									decision->pattern, (long long) decision->max_rows);
	else if (decision->action == AG_ACTION_ALLOW && decision->caps_rows)
		decision->reason = psprintf("policy %lld (%s on %s) allows up to %lld rows",
									(long long) decision->policy_id, decision->policy_command,
									decision->pattern, (long long) decision->max_rows);
	else
		decision->reason = psprintf("policy %lld (%s on %s) says %s",
									(long long) decision->policy_id, decision->policy_command,
									decision->pattern, ag_action_name(decision->action));
}
