/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  The hooks: judge each statement of a guarded session before it runs,
 *	  apply the decision, and log it.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"

int			ag_nesting = 0;
int			ag_depth = 0;

#define AG_SCHEMA_PREFIX "agent_guard."

/* agent_guard functions an agent may call: asking, never deciding. */
static const char *const agent_callable_functions[] = {
	"agent_guard.evaluate",
	"agent_guard.wait_for_decision",
	NULL
};

static void ag_xact_callback(XactEvent event, void *arg);
static void ag_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg);

void
ag_guard_init(void)
{
	RegisterXactCallback(ag_xact_callback, NULL);
	RegisterSubXactCallback(ag_subxact_callback, NULL);
}

/*
 * ag_depth as each open subtransaction began: the executor hooks count
 * depth without PG_TRY (they run for every statement of every session), so
 * an error restores it here, where it is caught.
 */
#define AG_MAX_TRACKED_SUBXACTS 64
static SubTransactionId subxact_ids[AG_MAX_TRACKED_SUBXACTS];
static int	subxact_depths[AG_MAX_TRACKED_SUBXACTS];
static int	subxact_count = 0;
static int	subxact_untracked = 0;	/* nested beyond the array */

/* Our own SQL never outlives its transaction; an error must not leave us blind. */
static void
ag_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		ag_nesting = 0;
		ag_depth = 0;
	}
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE)
	{
		subxact_count = 0;
		subxact_untracked = 0;
	}
}

static void
ag_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			if (subxact_count < AG_MAX_TRACKED_SUBXACTS)
			{
				subxact_ids[subxact_count] = mySubid;
				subxact_depths[subxact_count++] = ag_depth;
			}
			else
				subxact_untracked++;
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
		case SUBXACT_EVENT_ABORT_SUB:
			if (subxact_untracked > 0)
			{
				subxact_untracked--;
				break;
			}
			while (subxact_count > 0)
			{
				subxact_count--;
				if (subxact_ids[subxact_count] == mySubid)
				{
					if (event == SUBXACT_EVENT_ABORT_SUB)
						ag_depth = subxact_depths[subxact_count];
					break;
				}
			}
			break;
		default:
			break;
	}
}

/*
 * Cheap test run first by every hook: can this backend be guarded at all?
 * Invalidations are absorbed first (each transaction's start does it, and
 * inside a transaction block we do), so a committed registration or policy
 * change applies from the next statement even when that statement takes no
 * lock before we judge it.
 */
static inline bool
ag_guard_applies(void)
{
	if (!ag_enabled || ag_nesting > 0 || IsParallelWorker() ||
		MyProc == NULL || !OidIsValid(MyProc->roleId))
		return false;
	/* a transaction's start has absorbed them; inside a block, do it here */
	if (IsTransactionBlock())
		AcceptInvalidationMessages();
	return ag_session_mode() != AG_MODE_NONE;
}

static bool
ag_is_guard_object(const char *object)
{
	return strncmp(object, AG_SCHEMA_PREFIX, strlen(AG_SCHEMA_PREFIX)) == 0 ||
		strcmp(object, "agent_guard") == 0;
}

static void
ag_builtin_deny(AgDecision *decision, const char *reason)
{
	memset(decision, 0, sizeof(AgDecision));
	decision->action = AG_ACTION_DENY;
	decision->builtin = true;
	decision->max_rows = -1;
	decision->approvals_required = 1;
	decision->reason = reason;
}

/*
 * Protections no policy can lift: an agent never changes agent_guard
 * itself, its settings or its extension, never calls its admin or approver
 * functions, never loads code and never changes the server configuration.
 */
static bool
ag_builtin_decide(const AgPair *pair, AgDecision *decision)
{
	int			groups = ag_command_groups(pair->command);
	const char *const *fn;

	if (strcmp(pair->command, "LOAD") == 0)
	{
		ag_builtin_deny(decision, "agents may not load libraries");
		return true;
	}
	if (strcmp(pair->command, "ALTER SYSTEM") == 0)
	{
		ag_builtin_deny(decision, "agents may not change the server configuration");
		return true;
	}
	if ((strcmp(pair->command, "SET") == 0 || strcmp(pair->command, "RESET") == 0) &&
		pg_strncasecmp(pair->object, AG_SCHEMA_PREFIX, strlen(AG_SCHEMA_PREFIX)) == 0)
	{
		ag_builtin_deny(decision, "agents may not change agent_guard settings");
		return true;
	}
	/* a name computed as the statement runs could be any of these */
	if (strcmp(pair->command, "SET") == 0 &&
		strcmp(pair->object, AG_COMPUTED_SETTING) == 0)
	{
		ag_builtin_deny(decision, "agents may change a setting only by naming it, since a computed name could be one agents may never change");
		return true;
	}
	/* a forged notification could show approvers another statement */
	if (strcmp(pair->command, "NOTIFY") == 0 &&
		strncmp(pair->object, AG_CHANNEL_PREFIX, strlen(AG_CHANNEL_PREFIX)) == 0)
	{
		ag_builtin_deny(decision, "agents may not send agent_guard's notifications");
		return true;
	}
	/* a superuser agent could otherwise become someone else */
	if (strcmp(pair->command, "SET") == 0 &&
		pg_strcasecmp(pair->object, "session_authorization") == 0)
	{
		ag_builtin_deny(decision, "agents may not change their session user");
		return true;
	}
	if (strncmp(pair->object, "pg_catalog.", 11) == 0 &&
		(groups & (AG_GROUP_WRITE | AG_GROUP_DDL | AG_GROUP_DESTRUCTIVE)))
	{
		ag_builtin_deny(decision, "agents may not modify system catalogs");
		return true;
	}
	if (!ag_is_guard_object(pair->object))
		return false;
	if (strcmp(pair->command, "EXECUTE") == 0 || strcmp(pair->command, "CALL") == 0)
	{
		for (fn = agent_callable_functions; *fn; fn++)
			if (strcmp(pair->object, *fn) == 0)
				return false;
		ag_builtin_deny(decision, "agents may not call agent_guard administration or approval functions");
		return true;
	}
	if (groups & (AG_GROUP_READ | AG_GROUP_SESSION))
		return false;
	ag_builtin_deny(decision, "agents may not modify agent_guard, its objects or its extension");
	return true;
}

/* Volatile built-in functions that change nothing an agent could abuse. */
static bool
ag_harmless_volatile(Oid funcid)
{
	static const char *const harmless[] = {
		"set_config", "random", "gen_random_uuid", "clock_timestamp", "timeofday",
		"statement_timestamp", "pg_sleep", "setseed", NULL
	};
	const char *const *name;
	char	   *funcname;

	if (get_func_namespace(funcid) != PG_CATALOG_NAMESPACE)
		return false;
	funcname = get_func_name(funcid);
	for (name = harmless; *name; name++)
		if (funcname && strcmp(funcname, *name) == 0)
			return true;
	return false;
}

/*
 * The decision for one pair: built-in protections, then (where the
 * extension is not installed) read-only, then the policies.
 */
void
ag_decide_pair(const AgPair *pair, const Oid *agents, int n_agents, AgDecision *decision)
{
	if (ag_builtin_decide(pair, decision))
		return;
	if (!ag_extension_present())
	{
		/* a volatile function may write; the few harmless ones are let through */
		if (OidIsValid(pair->funcid) && func_volatile(pair->funcid) == PROVOLATILE_VOLATILE &&
			!ag_harmless_volatile(pair->funcid))
		{
			ag_builtin_deny(decision, "agent_guard is not installed in this database, so agents are limited to reading and may not call volatile functions");
			return;
		}
		if (ag_command_groups(pair->command) & (AG_GROUP_READ | AG_GROUP_SESSION))
		{
			memset(decision, 0, sizeof(AgDecision));
			decision->action = AG_ACTION_ALLOW;
			decision->max_rows = -1;
			decision->reason = "read-only outside databases with agent_guard";
			return;
		}
		ag_builtin_deny(decision, "agent_guard is not installed in this database, so agents are limited to reading");
		return;
	}
	ag_policy_decide(pair, agents, n_agents, decision);
}

/* The text of the one statement being judged, out of a multi-statement string. */
static char *
ag_statement_text(const char *source, int location, int length)
{
	size_t		source_len;

	if (source == NULL)
		return NULL;
	source_len = strlen(source);
	if (location < 0 || (size_t) location > source_len)
		location = 0;
	if (length <= 0 || (size_t) (location + length) > source_len)
		length = source_len - location;
	while (length > 0 && isspace((unsigned char) source[location]))
	{
		location++;
		length--;
	}
	while (length > 0 && isspace((unsigned char) source[location + length - 1]))
		length--;
	return pnstrdup(source + location, length);
}

static List *
ag_pair_objects(List *pairs)
{
	List	   *objects = NIL;
	ListCell   *lc;

	foreach(lc, pairs)
	{
		AgPair	   *pair = lfirst(lc);

		if (!list_member(objects, makeString(pair->object)))
			objects = lappend(objects, makeString(pair->object));
	}
	return objects;
}

static const char *
ag_decision_name(AgAction action, bool enforced)
{
	switch (action)
	{
		case AG_ACTION_ALLOW:
			return "allowed";
		case AG_ACTION_DENY:
			return enforced ? "denied" : "would_deny";
		case AG_ACTION_REQUIRE_APPROVAL:
			return enforced ? "parked" : "would_park";
		case AG_ACTION_TRASH:
			return enforced ? "denied" : "would_trash";
	}
	return "denied";
}

/*
 * Where agent_guard is not installed an agent may only read.  Besides
 * refusing what we classify as a change, make the transaction read-only so
 * PostgreSQL itself refuses writes hidden in functions (nextval(),
 * lo_create(), row locks).
 */
static void
ag_limit_to_reading(void)
{
	if (!ag_extension_present())
		XactReadOnly = true;
}

/* Raise the error an agent sees when a statement is denied. */
static void
ag_refuse(const AgPair *pair, const AgDecision *decision, const char *agent)
{
	if (decision->builtin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s on %s is not allowed for agent \"%s\": agent_guard never allows it",
						pair->command, pair->object, agent),
				 errdetail("agent_guard refuses this whatever the policies say: %s.",
						   decision->reason),
				 errhint("Do not retry it: only a role that is not an agent may do this.")));

	if (decision->policy_id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s on %s is not allowed for agent \"%s\": no policy allows it",
						pair->command, pair->object, agent),
				 errdetail("No agent_guard policy matches this command and object, and unmatched statements are denied."),
				 errhint("An administrator can allow it with agent_guard.set_policy('%s', '%s', 'allow').",
						 pair->command, pair->object)));

	if (decision->action == AG_ACTION_TRASH)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s on %s is not allowed for agent \"%s\": policy %lld only sends tables to the recycle bin",
						pair->command, pair->object, agent, (long long) decision->policy_id),
				 errdetail("Policy %lld (%s on %s) sends dropped tables to the recycle bin, which takes only a plain DROP TABLE (no CASCADE, no other objects).",
						   (long long) decision->policy_id,
						   decision->policy_command, decision->pattern),
				 errhint("Drop the tables one statement each, without CASCADE, or ask an administrator to change policy %lld.",
						 (long long) decision->policy_id)));

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s on %s is not allowed for agent \"%s\": policy %lld denies it",
					pair->command, pair->object, agent, (long long) decision->policy_id),
			 errdetail("Policy %lld (%s on %s) denies it.",
					   (long long) decision->policy_id,
					   decision->policy_command, decision->pattern),
			 errhint("Do not retry it: ask a human to run it, or to change policy %lld.",
					 (long long) decision->policy_id)));
}

/* Raise the error an agent sees when a statement waits for approval. */
static void
ag_refuse_parked(const AgPair *pair, const AgDecision *decision, const char *agent,
				 bool stored, int64 request_id, const char *error)
{
	if (!stored)
		ereport(ERROR,
				(errcode(AG_ERRCODE_APPROVAL_REQUIRED),
				 errmsg("%s on %s was not run: it needs approval, and the request could not be stored",
						pair->command, pair->object),
				 errdetail("Policy %lld (%s on %s) requires a human's approval for agent \"%s\"; no request was created: %s.",
						   (long long) decision->policy_id,
						   decision->policy_command, decision->pattern, agent, error),
				 RecoveryInProgress() ?
				 errhint("This server is a standby: send the statement to the primary.") :
				 errhint("Retry later, or ask an administrator to run the statement.")));

	ereport(ERROR,
			(errcode(AG_ERRCODE_APPROVAL_REQUIRED),
			 errmsg("%s on %s by agent \"%s\" was not run: it waits for approval as request %lld",
					pair->command, pair->object, agent, (long long) request_id),
			 errdetail("Request %lld is stored and approvers are notified; policy %lld (%s on %s) requires a human's approval.",
					   (long long) request_id, (long long) decision->policy_id,
					   decision->policy_command, decision->pattern),
			 errhint("Wait for the decision with: SELECT * FROM agent_guard.wait_for_decision(%lld); an approver runs it with: SELECT agent_guard.approve_pending(%lld);",
					 (long long) request_id, (long long) request_id)));
}

/* Count a refusal towards the agent's circuit breaker; announce a trip. */
static void
ag_count_refusal(const char *agent_name)
{
	Oid			agent = ag_session_agent();

	if (ag_breaker_note_refusal(agent))
	{
		ereport(LOG,
				(errmsg("agent_guard circuit breaker tripped for agent \"%s\"", agent_name),
				 errhidestmt(true)));
		ag_alert("BREAKER", "breaker_tripped", agent,
				 psprintf("%d refusals within %d s; writes and DDL refused until agent_guard.reset_breaker()",
						  ag_breaker_threshold, ag_breaker_window),
				 false);
	}
}

/*
 * Refuse a statement of a frozen agent (anything) or of a tripped one
 * (changes), with its own SQLSTATE, after recording it.
 */
static void
ag_refuse_stopped(const AgStatement *stmt, const char *why, Oid tripped_agent)
{
	AgEvent		event;
	AgPair		none = {"(statement)", "(none)", InvalidOid, InvalidOid};
	const AgPair *first = stmt->pairs ? linitial(stmt->pairs) : &none;
	char	   *agent = GetUserNameFromId(OidIsValid(tripped_agent) ? tripped_agent :
										  ag_session_agent(), true);

	if (agent == NULL)
		agent = "?";
	memset(&event, 0, sizeof(event));
	event.command = first->command;
	event.objects = ag_pair_objects(stmt->pairs);
	event.statement = stmt->text;
	event.decision = why;
	event.rows = -1;
	event.agent = agent;
	event.reason = strcmp(why, "frozen") == 0 ? "the agent is frozen" :
		"the agent's circuit breaker is tripped";
	ag_record_event(&event, true);

	if (strcmp(why, "frozen") == 0)
		ereport(ERROR,
				(errcode(AG_ERRCODE_FROZEN),
				 errmsg("agent \"%s\" is frozen: no statement may run", agent),
				 errdetail("An administrator stopped this agent with agent_guard.freeze()."),
				 errhint("Only an administrator can lift it, with SELECT agent_guard.unfreeze('%s');", agent)));
	ereport(ERROR,
			(errcode(AG_ERRCODE_BREAKER),
			 errmsg("agent \"%s\" is stopped by its circuit breaker: %s on %s refused",
					agent, first->command, first->object),
			 errdetail("It was refused %d times within %d seconds, so its writes and DDL are refused until an administrator resets the breaker.",
					   ag_breaker_threshold, ag_breaker_window),
			 errhint("An administrator can reset it with SELECT agent_guard.reset_breaker('%s');", agent)));
}

/*
 * Judge one statement: decide every pair, take the most restrictive
 * decision, record it unless it is an allowed read, and refuse when
 * enforcing.  Refusals are stored durably (through the writer) before the
 * agent gets its error.
 */
/* The record of a DROP TABLE that ag_judge() sent to the recycle bin. */
static AgEvent trash_event;

static bool
ag_judge(AgStatement *stmt, AgCap *cap, bool can_trash)
{
	AgMode		mode = ag_session_mode();
	int			n_agents;
	const Oid  *agents = ag_session_agents(&n_agents);
	const AgPair *worst_pair = NULL;
	AgDecision	worst;
	bool		changes = false;
	bool		reads = false;
	bool		enforced;
	ListCell   *lc;
	AgEvent		event;
	char	   *agent;
	int64		approved_request = 0;
	Oid			tripped_agent;

	if (cap)
		cap->active = false;
	if (stmt->pairs == NIL)
		return false;

	/* the statement an approver approved runs, if it is still the same */
	if (ag_replay_covers(stmt, ag_depth, &approved_request))
		return false;

	memset(&worst, 0, sizeof(worst));
	foreach(lc, stmt->pairs)
	{
		AgPair	   *pair = lfirst(lc);
		AgDecision	decision;

		ag_decide_pair(pair, agents, n_agents, &decision);
		/* the tightest row cap among the allowed changes */
		if (cap && decision.action == AG_ACTION_ALLOW && decision.max_rows >= 0 &&
			ag_command_changes_rows(pair->command) &&
			(!cap->active || decision.max_rows < cap->decision.max_rows))
		{
			cap->active = true;
			cap->command = pair->command;
			cap->object = pair->object;
			cap->relid = pair->relid;
			cap->decision = decision;
		}
		if (!(ag_command_groups(pair->command) & (AG_GROUP_READ | AG_GROUP_SESSION)))
			changes = true;
		else if (ag_command_groups(pair->command) & AG_GROUP_READ)
			reads = true;
		if (worst_pair == NULL || decision.action > worst.action ||
			(decision.action == worst.action && decision.builtin && !worst.builtin))
		{
			worst = decision;
			worst_pair = pair;
		}
	}

	/* a tripped breaker stops every change */
	if (changes && OidIsValid(tripped_agent = ag_session_breaker_tripped()))
		ag_refuse_stopped(stmt, "breaker", tripped_agent);
	if (cap && cap->active)
		ag_explain_decision(&cap->decision);

	/* allowed reads are recorded only on request; session commands never */
	if (worst.action == AG_ACTION_ALLOW && !changes && !(reads && ag_audit_reads))
		return false;
	ag_explain_decision(&worst);

	/* built-in protections hold in monitor mode too */
	enforced = (mode == AG_MODE_ENFORCE || worst.builtin);
	agent = GetUserNameFromId(ag_session_agent(), true);
	if (agent == NULL)
		agent = "?";
	if (cap && cap->active)
	{
		cap->agent = agent;
		cap->enforced = (mode == AG_MODE_ENFORCE);
	}

	memset(&event, 0, sizeof(event));
	event.command = worst_pair->command;
	event.objects = ag_pair_objects(stmt->pairs);
	event.statement = stmt->text;
	event.decision = ag_decision_name(worst.action, enforced);
	event.policy_id = worst.policy_id;
	event.reason = worst.reason;
	event.rows = -1;
	event.agent = agent;

	if (worst.action == AG_ACTION_ALLOW || !enforced)
	{
		ag_record_event(&event, false);
		return false;
	}

	/* a plain DROP TABLE whose every table goes to the recycle bin */
	if (worst.action == AG_ACTION_TRASH && can_trash)
	{
		trash_event = event;
		trash_event.decision = "trashed";
		return true;
	}

	if (worst.action == AG_ACTION_REQUIRE_APPROVAL && ag_replay_active(&approved_request))
	{
		/* an approval covers what the approver saw, nothing it sets off */
		event.decision = "denied";
		event.reason = psprintf("%s; set off by the replay of request %lld, which does not cover it",
								worst.reason, (long long) approved_request);
		ag_record_event(&event, true);
		ereport(ERROR,
				(errcode(AG_ERRCODE_APPROVAL_REQUIRED),
				 errmsg("%s on %s was not run: request %lld was not approved for it",
						worst_pair->command, worst_pair->object, (long long) approved_request),
				 errdetail("Policy %lld (%s on %s) requires a human's approval; the approval of request %lld covers only what the approver saw.",
						   (long long) worst.policy_id, worst.policy_command, worst.pattern,
						   (long long) approved_request),
				 errhint("The agent can send this statement on its own to make a request for it.")));
	}

	if (worst.action == AG_ACTION_REQUIRE_APPROVAL)
	{
		int64		request_id = 0;
		char	   *error = NULL;
		bool		stored;

		/* an approved one-retry request lets this statement through once */
		if (stmt->needs_own_transaction && ag_claim_retry(stmt, &request_id))
		{
			event.decision = "executed";
			event.request_id = request_id;
			event.reason = psprintf("approved request %lld, run once on retry",
									(long long) request_id);
			ag_record_event(&event, false);
			return false;
		}
		ag_count_refusal(agent);
		stored = ag_park(stmt, worst_pair, &worst, agent, &request_id, &error);
		/* a stored request comes with its audit row, logged by the writer */
		if (!stored)
		{
			event.reason = psprintf("%s; the request could not be stored: %s",
									worst.reason, error);
			ereport(LOG,
					(errmsg("agent_guard could not store an approval request: %s", error),
					 errhidestmt(true)));
			ag_log_event(&event);
		}
		ag_refuse_parked(worst_pair, &worst, agent, stored, request_id, error);
	}
	else
	{
		ag_record_event(&event, true);
		ag_count_refusal(agent);
		ag_refuse(worst_pair, &worst, agent);
	}
	return false;
}

/*
 * What the client sent: remembered when a statement starts at top level, so
 * that a statement judged inside a function can be parked as the one the
 * agent actually sent.
 */
static const char *toplevel_source = NULL;
static int	toplevel_location = 0;
static int	toplevel_length = 0;
static ParamListInfo toplevel_params = NULL;

static inline void
ag_note_toplevel(const char *source, int location, int length, ParamListInfo params)
{
	if (ag_depth == 0)
	{
		toplevel_source = source;
		toplevel_location = location;
		toplevel_length = length;
		toplevel_params = params;
	}
}

static void
ag_prepare_statement(AgStatement *stmt, List *pairs, const char *source,
					 int location, int length)
{
	char	   *prepared;

	stmt->pairs = pairs;
	stmt->text = ag_statement_text(source, location, length);
	/* EXECUTE of a prepared statement: judge and park its query */
	if (pg_strncasecmp(stmt->text, "prepare", 7) == 0 &&
		(prepared = ag_prepared_query(stmt->text)) != NULL)
		stmt->text = prepared;
	stmt->nested = ag_depth > 0;
	stmt->toplevel = stmt->text;
	if (stmt->nested && toplevel_source)
	{
		stmt->toplevel = ag_statement_text(toplevel_source, toplevel_location, toplevel_length);
		if (pg_strncasecmp(stmt->toplevel, "prepare", 7) == 0 &&
			(prepared = ag_prepared_query(stmt->toplevel)) != NULL)
			stmt->toplevel = prepared;
	}
	stmt->params = stmt->nested ? toplevel_params : NULL;
	stmt->needs_own_transaction = false;
	stmt->estimated_rows = -1;
}

void
ag_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	ag_note_toplevel(queryString, pstmt->stmt_location, pstmt->stmt_len, params);
	if (ag_guard_applies())
	{
		AgStatement stmt;
		Node	   *parsetree = pstmt->utilityStmt;
		bool		can_trash;

		ag_limit_to_reading();
		ag_prepare_statement(&stmt, ag_classify_utility(pstmt->utilityStmt),
							 queryString, pstmt->stmt_location, pstmt->stmt_len);
		/* a frozen agent may only end its transaction or reset its session */
		if (ag_session_frozen() && !IsA(pstmt->utilityStmt, TransactionStmt) &&
			!IsA(pstmt->utilityStmt, VariableSetStmt))
			ag_refuse_stopped(&stmt, "frozen", InvalidOid);
		if (!stmt.nested)
			stmt.params = params;
		/* COPY FROM in replica mode skips triggers too (see ag_ExecutorStart) */
		if (SessionReplicationRole != SESSION_REPLICATION_ROLE_ORIGIN &&
			IsA(parsetree, CopyStmt) && ((CopyStmt *) parsetree)->is_from)
			stmt.pairs = ag_add_pair(stmt.pairs, "SET SESSION_REPLICATION_ROLE",
									 pstrdup("session_replication_role"), InvalidOid);
		stmt.needs_own_transaction = ag_needs_own_transaction(pstmt->utilityStmt);
		/* a standby cannot move tables: there, trash refuses like deny */
		can_trash = IsA(parsetree, DropStmt) && !RecoveryInProgress() &&
			((DropStmt *) parsetree)->removeType == OBJECT_TABLE &&
			((DropStmt *) parsetree)->behavior == DROP_RESTRICT &&
			!((DropStmt *) parsetree)->concurrent &&
			ag_trashable((DropStmt *) parsetree);
		if (ag_judge(&stmt, NULL, can_trash))
		{
			/*
			 * Moved to the recycle bin instead of dropped: recorded when the
			 * move commits, so one that fails (not the owner) or is rolled
			 * back claims nothing.  DROP TABLE IF EXISTS of no table moves
			 * nothing and is an allowed no-op.
			 */
			if (ag_trash_tables((DropStmt *) parsetree, stmt.text,
								GetUserNameFromId(ag_session_agent(), true)) > 0)
				ag_record_at_commit(&trash_event);
			else
			{
				trash_event.decision = "allowed";
				trash_event.reason = psprintf("%s; no table to move", trash_event.reason);
				ag_record_event(&trash_event, false);
			}
			if (qc)
				SetQueryCompletion(qc, CMDTAG_DROP_TABLE, 0);
			return;
		}
	}

	/* EXECUTE of a prepared statement is no nesting: its plan is what the client sent */
	if (!IsA(pstmt->utilityStmt, ExecuteStmt))
		ag_depth++;
	PG_TRY();
	{
		if (ag_prev_ProcessUtility)
			ag_prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								   params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		if (!IsA(pstmt->utilityStmt, ExecuteStmt))
			ag_depth--;
	}
	PG_END_TRY();
}

void
ag_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	AgStatement stmt;
	AgCap		cap;

	ag_note_toplevel(queryDesc->sourceText, queryDesc->plannedstmt->stmt_location,
					 queryDesc->plannedstmt->stmt_len, queryDesc->params);
	cap.active = false;
	/* EXPLAIN without ANALYZE runs nothing */
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && ag_guard_applies())
	{
		PlannedStmt *pstmt = queryDesc->plannedstmt;

		ag_limit_to_reading();
		ag_prepare_statement(&stmt, ag_classify_plan(pstmt, queryDesc->params),
							 queryDesc->sourceText, pstmt->stmt_location, pstmt->stmt_len);
		/* a frozen agent runs nothing, not even a read */
		if (ag_session_frozen())
			ag_refuse_stopped(&stmt, "frozen", InvalidOid);
		if (!stmt.nested)
			stmt.params = queryDesc->params;
		/*
		 * In replica mode triggers and foreign keys do not fire: a write
		 * there is judged as setting it, however the session got into it
		 * (connection options, role defaults, a function's SET clause).
		 */
		if (SessionReplicationRole != SESSION_REPLICATION_ROLE_ORIGIN &&
			(pstmt->commandType != CMD_SELECT || pstmt->hasModifyingCTE))
			stmt.pairs = ag_add_pair(stmt.pairs, "SET SESSION_REPLICATION_ROLE",
									 pstrdup("session_replication_role"), InvalidOid);
		/* what the planner expects an UPDATE or DELETE to change, for approvers */
		if (IsA(pstmt->planTree, ModifyTable) && outerPlan(pstmt->planTree))
			stmt.estimated_rows = outerPlan(pstmt->planTree)->plan_rows;
		(void) ag_judge(&stmt, &cap, false);
	}

	if (ag_prev_ExecutorStart)
		ag_prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if (cap.active)
		ag_rowcap_arm(queryDesc, &stmt, &cap);
}

/*
 * Before planning: judge the functions the query calls, while the query
 * still shows them (see ag_classify_query_functions).
 */
PlannedStmt *
ag_planner(Query *parse, const char *query_string, int cursorOptions,
		   ParamListInfo boundParams)
{
	if (ag_guard_applies())
	{
		AgStatement stmt;

		ag_prepare_statement(&stmt, ag_classify_query_functions(parse, boundParams),
							 query_string, parse->stmt_location, parse->stmt_len);
		(void) ag_judge(&stmt, NULL, false);
	}
	if (ag_prev_planner)
		return ag_prev_planner(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

/* ExecutorRun and ExecutorFinish only track how deep statements nest. */
void
ag_ExecutorRun(AG_EXECUTOR_RUN_PARAMS)
{
	/* an error's depth is restored by the (sub)transaction callbacks */
	ag_depth++;
	if (ag_prev_ExecutorRun)
		ag_prev_ExecutorRun(AG_EXECUTOR_RUN_ARGS);
	else
		standard_ExecutorRun(AG_EXECUTOR_RUN_ARGS);
	ag_depth--;
}

void
ag_ExecutorFinish(QueryDesc *queryDesc)
{
	/* an error's depth is restored by the (sub)transaction callbacks */
	ag_depth++;
	if (ag_prev_ExecutorFinish)
		ag_prev_ExecutorFinish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);
	ag_depth--;
	ag_rowcap_check(queryDesc);
}

/*
 * A statement changed more rows than its cap: record it and roll it back
 * with an error, or park it when its policy wants a human for that.
 */
void
ag_rowcap_exceeded(const AgStatement *stmt, const AgCap *cap, int64 rows)
{
	AgEvent		event;
	AgPair		pair;
	AgDecision	decision = cap->decision;

	pair.command = cap->command;
	pair.object = (char *) cap->object;
	pair.relid = cap->relid;
	pair.funcid = InvalidOid;

	memset(&event, 0, sizeof(event));
	event.command = cap->command;
	event.objects = list_make1(makeString(pstrdup(cap->object)));
	event.statement = stmt->text;
	event.policy_id = decision.policy_id;
	event.rows = rows;
	event.agent = cap->agent;
	event.reason = psprintf("changed %lld rows, more than max_rows %lld of policy %lld",
							(long long) rows, (long long) decision.max_rows,
							(long long) decision.policy_id);

	if (!cap->enforced)
	{
		event.decision = "would_cap";
		ag_record_event(&event, false);
		return;
	}

	if (decision.over_cap_needs_approval)
	{
		AgStatement parked = *stmt;
		int64		request_id = 0;
		char	   *error = NULL;

		parked.pairs = list_make1(&pair);
		decision.reason = event.reason;
		ag_count_refusal(cap->agent);
		if (!ag_park(&parked, &pair, &decision, cap->agent, &request_id, &error))
			ereport(ERROR,
					(errcode(AG_ERRCODE_APPROVAL_REQUIRED),
					 errmsg("%s on %s changed %lld rows, more than the %lld agent \"%s\" may change without approval, but the request could not be stored",
							cap->command, cap->object, (long long) rows,
							(long long) decision.max_rows, cap->agent),
					 errdetail("The statement was rolled back; no request was created: %s.", error),
					 errhint("Retry later, or ask an administrator to run the statement.")));
		ereport(ERROR,
				(errcode(AG_ERRCODE_APPROVAL_REQUIRED),
				 errmsg("%s on %s changed %lld rows, more than the %lld agent \"%s\" may change without approval: rolled back, it waits for approval as request %lld",
						cap->command, cap->object, (long long) rows,
						(long long) decision.max_rows, cap->agent, (long long) request_id),
				 errdetail("Request %lld is stored and approvers are notified; policy %lld (%s on %s) requires a human's approval above %lld rows.",
						   (long long) request_id, (long long) decision.policy_id,
						   decision.policy_command, decision.pattern,
						   (long long) decision.max_rows),
				 errhint("Wait for the decision with: SELECT * FROM agent_guard.wait_for_decision(%lld); an approver runs it with: SELECT agent_guard.approve_pending(%lld);",
						 (long long) request_id, (long long) request_id)));
	}

	event.decision = "row_cap";
	ag_record_event(&event, true);
	ag_count_refusal(cap->agent);
	ereport(ERROR,
			(errcode(AG_ERRCODE_ROW_CAP),
			 errmsg("%s on %s changed %lld rows, more than the %lld allowed for agent \"%s\": rolled back",
					cap->command, cap->object, (long long) rows,
					(long long) decision.max_rows, cap->agent),
			 errdetail("The statement was rolled back. Policy %lld (%s on %s) caps it at %lld rows.",
					   (long long) decision.policy_id, decision.policy_command,
					   decision.pattern, (long long) decision.max_rows),
			 errhint("Change fewer rows per statement, or ask an administrator to raise max_rows of policy %lld.",
					 (long long) decision.policy_id)));
}

/*
 * Settings: an agent session may not change agent_guard.* from its
 * connection string or with SET/set_config(), whatever its privileges.
 */
static bool
ag_setting_change_allowed(GucSource source)
{
	if (source != PGC_S_SESSION && source != PGC_S_CLIENT)
		return true;
	if (!IsUnderPostmaster || !IsTransactionState() || MyProc == NULL ||
		!OidIsValid(MyProc->roleId) || ag_nesting > 0)
		return true;
	if (ag_session_mode() == AG_MODE_NONE)
		return true;
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("agents may not change agent_guard settings");
	GUC_check_errdetail("agent_guard refuses this whatever the policies say.");
	GUC_check_errhint("Change agent_guard settings as a role that is not an agent.");
	return false;
}

bool
ag_check_bool_setting(bool *newval, void **extra, GucSource source)
{
	return ag_setting_change_allowed(source);
}

bool
ag_check_int_setting(int *newval, void **extra, GucSource source)
{
	return ag_setting_change_allowed(source);
}

bool
ag_check_enum_setting(int *newval, void **extra, GucSource source)
{
	return ag_setting_change_allowed(source);
}
