/*-------------------------------------------------------------------------
 *
 * sqlfuncs.c
 *	  SQL-callable functions: agent registration, policy management,
 *	  evaluate(), and the policy table's invalidation trigger.
 *
 * Administration functions are SECURITY DEFINER; each still refuses a
 * caller that is an agent, whatever has been granted.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ag_register_agent);
PG_FUNCTION_INFO_V1(ag_unregister_agent);
PG_FUNCTION_INFO_V1(ag_set_agent_mode);
PG_FUNCTION_INFO_V1(ag_set_policy);
PG_FUNCTION_INFO_V1(ag_drop_policy);
PG_FUNCTION_INFO_V1(ag_evaluate);
PG_FUNCTION_INFO_V1(ag_policies_changed);

#define AG_MAX_PATTERN_LENGTH 256
#define AG_MAX_APPROVALS 10

/* Administration is for humans: refuse agents whatever they were granted. */
void
ag_require_not_agent(const char *function)
{
	if (ag_caller_is_agent())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("agents may not call %s", function),
				 errdetail("agent_guard refuses administration and approval functions to agent sessions, whatever has been granted."),
				 errhint("Call it as a role that is not an agent.")));
}

void
ag_require_argument(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/* An interval argument that must be given and not negative. */
Interval *
ag_interval_argument(FunctionCallInfo fcinfo, int argno, const char *name)
{
	Interval   *interval;

	ag_require_argument(fcinfo, argno, name);
	interval = PG_GETARG_INTERVAL_P(argno);
	if (interval->time < 0 || interval->day < 0 || interval->month < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", name)));
	return interval;
}

static AgMode
ag_mode_argument(text *mode_text)
{
	char	   *mode = text_to_cstring(mode_text);
	AgMode		parsed = ag_parse_mode(mode);

	if (parsed == AG_MODE_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid agent mode \"%s\"", mode),
				 errhint("Valid modes are \"enforce\" and \"monitor\".")));
	return parsed;
}

char *
ag_role_name(Oid roleid)
{
	char	   *name = GetUserNameFromId(roleid, true);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", roleid)));
	return name;
}

/* Record an administrative change, as its transaction commits. */
void
ag_log_change(const char *command, const char *object, const char *reason,
			  int64 policy_id)
{
	AgEvent		event;

	memset(&event, 0, sizeof(event));
	event.command = command;
	event.objects = list_make1(makeString(pstrdup(object)));
	event.decision = "changed";
	event.policy_id = policy_id;
	event.reason = reason;
	event.rows = -1;
	event.actor = GetUserNameFromId(GetSessionUserId(), true);
	ag_record_at_commit(&event);
}

/* Warn about each risky attribute of a new agent (agent_posture()). */
static void
ag_warn_posture(Oid roleid)
{
	Oid			argtypes[1] = {REGROLEOID};
	Datum		values[1] = {ObjectIdGetDatum(roleid)};
	uint64		i;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT attribute, severity, detail, fix_sql"
							  " FROM agent_guard.agent_posture($1)",
							  1, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run agent_guard.agent_posture");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		ereport(WARNING,
				(errmsg("agent \"%s\" has risky attribute: %s (%s)",
						ag_role_name(roleid), SPI_getvalue(tuple, desc, 1),
						SPI_getvalue(tuple, desc, 2)),
				 errdetail_internal("%s", SPI_getvalue(tuple, desc, 3)),
				 errhint("Fix it with: %s", SPI_getvalue(tuple, desc, 4))));
	}
	SPI_finish();
}

/*
 * With pgaudit loaded, log every statement of the agent role through it
 * too (pgaudit.log = 'all' for the role), or stop doing so.
 */
static void
ag_pgaudit_session_logging(Oid roleid, bool on)
{
	char	   *sql;

	if (GetConfigOption("pgaudit.log", true, false) == NULL)
		return;
	sql = on ?
		psprintf("ALTER ROLE %s SET pgaudit.log = 'all'", quote_identifier(ag_role_name(roleid))) :
		psprintf("ALTER ROLE %s RESET pgaudit.log", quote_identifier(ag_role_name(roleid)));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not change pgaudit.log for the agent");
	SPI_finish();
	if (on)
		ereport(NOTICE,
				(errmsg("pgaudit session logging is on for agent \"%s\"", ag_role_name(roleid)),
				 errdetail("Every statement of its new sessions is logged by pgaudit as well.")));
}

/* register_agent(agent regrole, mode text DEFAULT 'enforce') */
Datum
ag_register_agent(PG_FUNCTION_ARGS)
{
	Oid			roleid;
	AgMode		mode;
	const char *mode_name;

	ag_require_not_agent("agent_guard.register_agent()");
	ag_require_argument(fcinfo, 0, "agent");
	ag_require_argument(fcinfo, 1, "mode");
	roleid = PG_GETARG_OID(0);
	mode = ag_mode_argument(PG_GETARG_TEXT_PP(1));
	mode_name = mode == AG_MODE_ENFORCE ? "enforce" : "monitor";
	(void) ag_role_name(roleid);

	if (roleid == BOOTSTRAP_SUPERUSERID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the bootstrap superuser cannot be an agent"),
				 errhint("Create a dedicated role for the agent.")));
	if (ag_role_mode(roleid) == mode)
		ereport(NOTICE,
				(errmsg("role \"%s\" is already registered as an agent in %s mode",
						ag_role_name(roleid), mode_name)));

	ag_set_agent_label(roleid, mode_name, ag_role_frozen(roleid));
	ag_log_change("REGISTER AGENT", ag_role_name(roleid), mode_name, 0);
	ag_pgaudit_session_logging(roleid, true);
	ag_warn_posture(roleid);
	PG_RETURN_VOID();
}

Oid
ag_registered_agent_argument(FunctionCallInfo fcinfo)
{
	Oid			roleid;

	ag_require_argument(fcinfo, 0, "agent");
	roleid = PG_GETARG_OID(0);
	if (ag_role_mode(roleid) == AG_MODE_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" is not a registered agent", ag_role_name(roleid)),
				 errhint("Register it with agent_guard.register_agent().")));
	return roleid;
}

/* unregister_agent(agent regrole) */
Datum
ag_unregister_agent(PG_FUNCTION_ARGS)
{
	Oid			roleid;

	ag_require_not_agent("agent_guard.unregister_agent()");
	roleid = ag_registered_agent_argument(fcinfo);
	ag_set_agent_label(roleid, NULL, false);
	ag_log_change("UNREGISTER AGENT", ag_role_name(roleid), NULL, 0);
	ag_pgaudit_session_logging(roleid, false);
	PG_RETURN_VOID();
}

/* set_agent_mode(agent regrole, mode text) */
Datum
ag_set_agent_mode(PG_FUNCTION_ARGS)
{
	Oid			roleid;
	AgMode		mode;
	const char *mode_name;

	ag_require_not_agent("agent_guard.set_agent_mode()");
	roleid = ag_registered_agent_argument(fcinfo);
	ag_require_argument(fcinfo, 1, "mode");
	mode = ag_mode_argument(PG_GETARG_TEXT_PP(1));
	mode_name = mode == AG_MODE_ENFORCE ? "enforce" : "monitor";
	ag_set_agent_label(roleid, mode_name, ag_role_frozen(roleid));
	ag_log_change("SET AGENT MODE", ag_role_name(roleid), mode_name, 0);
	PG_RETURN_VOID();
}

/* An object pattern: a glob over schema.name, printable and without spaces. */
static void
ag_validate_pattern(const char *pattern)
{
	const unsigned char *p;
	bool		valid = pattern[0] != '\0' && strlen(pattern) <= AG_MAX_PATTERN_LENGTH;

	for (p = (const unsigned char *) pattern; valid && *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			valid = false;
	if (!valid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid object pattern \"%s\"", pattern),
				 errdetail("An object pattern is a glob over schema.name of at most %d characters, without spaces, where * matches any run of characters and ? one character.",
						   AG_MAX_PATTERN_LENGTH),
				 errhint("Examples: *, public.*, *.audit_log_*, billing.invoices.")));
}

/*
 * set_policy(command, object_pattern, action, agent, max_rows,
 *			  approvals_required, note) RETURNS bigint
 */
Datum
ag_set_policy(PG_FUNCTION_ARGS)
{
	char	   *command_arg;
	const char *command;
	char	   *pattern;
	char	   *action_arg;
	AgAction	action;
	Oid			agent = InvalidOid;
	bool		has_max_rows = !PG_ARGISNULL(4);
	int64		max_rows = has_max_rows ? PG_GETARG_INT64(4) : 0;
	int32		approvals;
	Oid			argtypes[7] = {TEXTOID, TEXTOID, TEXTOID, OIDOID, INT8OID, INT4OID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = "       ";
	int64		policy_id;
	bool		isnull;

	ag_require_not_agent("agent_guard.set_policy()");
	ag_require_argument(fcinfo, 0, "command");
	ag_require_argument(fcinfo, 1, "object_pattern");
	ag_require_argument(fcinfo, 2, "action");
	ag_require_argument(fcinfo, 5, "approvals_required");

	command_arg = text_to_cstring(PG_GETARG_TEXT_PP(0));
	command = ag_canonical_command(command_arg);
	if (command == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid command \"%s\"", command_arg),
				 errhint("%s", ag_valid_commands_hint())));

	pattern = text_to_cstring(PG_GETARG_TEXT_PP(1));
	ag_validate_pattern(pattern);

	action_arg = text_to_cstring(PG_GETARG_TEXT_PP(2));
	action = ag_parse_action(action_arg);
	if ((int) action < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid action \"%s\"", action_arg),
				 errhint("Valid actions are allow, deny, require_approval and trash.")));
	if (action == AG_ACTION_TRASH && strcmp(command, "DROP TABLE") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("action \"trash\" applies only to DROP TABLE"),
				 errhint("Use allow, deny or require_approval for %s.", command)));

	if (!PG_ARGISNULL(3))
	{
		agent = PG_GETARG_OID(3);
		if (ag_role_mode(agent) == AG_MODE_NONE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("role \"%s\" is not a registered agent", ag_role_name(agent)),
					 errhint("Register it first with agent_guard.register_agent(), or pass NULL for a policy that covers every agent.")));
	}

	if (has_max_rows && max_rows < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must be zero or more, not %lld", (long long) max_rows)));
	if (has_max_rows && !ag_command_counts_rows(command))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows does not apply to %s", command),
				 errhint("max_rows applies to INSERT, UPDATE, DELETE, MERGE, UPDATE WITHOUT WHERE, DELETE WITHOUT WHERE and the groups WRITE, DESTRUCTIVE and ALL.")));

	approvals = PG_GETARG_INT32(5);
	if (approvals < 1 || approvals > AG_MAX_APPROVALS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("approvals_required must be between 1 and %d, not %d",
						AG_MAX_APPROVALS, approvals)));

	values[0] = CStringGetTextDatum(command);
	values[1] = CStringGetTextDatum(pattern);
	values[2] = CStringGetTextDatum(ag_action_name(action));
	values[3] = ObjectIdGetDatum(agent);
	if (!OidIsValid(agent))
		nulls[3] = 'n';
	values[4] = Int64GetDatum(max_rows);
	if (!has_max_rows)
		nulls[4] = 'n';
	values[5] = Int32GetDatum(approvals);
	values[6] = PG_ARGISNULL(6) ? (Datum) 0 : PG_GETARG_DATUM(6);
	if (PG_ARGISNULL(6))
		nulls[6] = 'n';

	/*
	 * Update the policy for (agent, command, pattern), or insert it.  Not
	 * ON CONFLICT: the insert trigger that merges restored rows must only
	 * ever see rows whose key is new.  No row limit: a limited statement
	 * would skip the invalidation trigger.
	 */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("UPDATE agent_guard.policies"
							  " SET action = $3, max_rows = $5, approvals_required = $6,"
							  "  note = $7, enabled = true"
							  " WHERE COALESCE(agent::pg_catalog.oid, 0::pg_catalog.oid)"
							  "  OPERATOR(pg_catalog.=) COALESCE($4, 0::pg_catalog.oid)"
							  "  AND command OPERATOR(pg_catalog.=) $1"
							  "  AND object_pattern OPERATOR(pg_catalog.=) $2"
							  " RETURNING id",
							  7, argtypes, values, nulls, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not store the policy");
	if (SPI_processed == 0 &&
		(SPI_execute_with_args("INSERT INTO agent_guard.policies"
							   " (command, object_pattern, action, agent, max_rows,"
							   "  approvals_required, note)"
							   " VALUES ($1, $2, $3, $4::pg_catalog.regrole, $5, $6, $7)"
							   " RETURNING id",
							   7, argtypes, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING ||
		 SPI_processed != 1))
		elog(ERROR, "could not store the policy");
	policy_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	ag_log_change("SET POLICY", pattern,
				  psprintf("%s on %s: %s", command, pattern, ag_action_name(action)),
				  policy_id);
	PG_RETURN_INT64(policy_id);
}

/* drop_policy(policy_id bigint) */
Datum
ag_drop_policy(PG_FUNCTION_ARGS)
{
	int64		policy_id;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;

	ag_require_not_agent("agent_guard.drop_policy()");
	ag_require_argument(fcinfo, 0, "policy_id");
	policy_id = PG_GETARG_INT64(0);
	values[0] = Int64GetDatum(policy_id);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("DELETE FROM agent_guard.policies"
							  " WHERE id OPERATOR(pg_catalog.=) $1 RETURNING installed_default",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "could not delete the policy");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("policy %lld does not exist", (long long) policy_id)));
	/* remembered, so that a restore into a fresh install drops it again */
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) &&
		SPI_execute_with_args("INSERT INTO agent_guard.removed_defaults (id) VALUES ($1)"
							  " ON CONFLICT DO NOTHING",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the removed default");
	SPI_finish();

	ag_log_change("DROP POLICY", psprintf("%lld", (long long) policy_id), NULL, policy_id);
	PG_RETURN_VOID();
}

/* Classify and decide each statement of a string, one result row per pair. */
static void
ag_evaluate_statement(const char *statement, Oid *agents, int n_agents,
					  ReturnSetInfo *rsinfo)
{
	List	   *raw;
	ListCell   *lc;

	raw = raw_parser(statement, RAW_PARSE_DEFAULT);
	foreach(lc, raw)
	{
		RawStmt    *rawstmt = lfirst(lc);
		List	   *queries;
		ListCell   *qc;

		queries = pg_analyze_and_rewrite_fixedparams(rawstmt, statement, NULL, 0, NULL);
		foreach(qc, queries)
		{
			Query	   *query = lfirst(qc);
			List	   *pairs;
			ListCell   *pc;

			if (query->commandType == CMD_UTILITY)
				pairs = ag_classify_utility(query->utilityStmt);
			else
			{
				/* as the guard does: functions before planning, the rest from the plan */
				List	   *functions = ag_classify_query_functions(query, NULL);
				ListCell   *fc;

				pairs = ag_classify_plan(pg_plan_query(query, statement,
													   CURSOR_OPT_PARALLEL_OK, NULL), NULL);
				foreach(fc, functions)
				{
					AgPair	   *pair = lfirst(fc);

					pairs = ag_add_pair(pairs, pair->command, pair->object, pair->relid);
				}
			}
			foreach(pc, pairs)
			{
				AgPair	   *pair = lfirst(pc);
				AgDecision	decision;
				Datum		values[5];
				bool		nulls[5] = {false, false, false, false, false};

				ag_decide_pair(pair, agents, n_agents, &decision);
				ag_explain_decision(&decision);
				values[0] = CStringGetTextDatum(pair->command);
				values[1] = CStringGetTextDatum(pair->object);
				values[2] = CStringGetTextDatum(ag_action_name(decision.action));
				values[3] = Int64GetDatum(decision.policy_id);
				nulls[3] = decision.policy_id == 0;
				values[4] = CStringGetTextDatum(decision.builtin ?
												psprintf("built-in: %s", decision.reason) :
												decision.reason);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
		}
	}
}

/*
 * evaluate(statement text, agent regrole): what would happen if that agent
 * ran that statement.  The statement is parsed, analysed and planned with
 * the caller's rights, never executed.
 */
Datum
ag_evaluate(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *statement;
	Oid			roleid;
	Oid		   *agents;
	int			n_agents;
	MemoryContext caller_context = CurrentMemoryContext;

	ag_require_argument(fcinfo, 0, "statement");
	ag_require_argument(fcinfo, 1, "agent");
	statement = text_to_cstring(PG_GETARG_TEXT_PP(0));
	roleid = PG_GETARG_OID(1);
	(void) ag_role_name(roleid);

	/* an agent may ask only about itself */
	if (ag_session_mode() != AG_MODE_NONE && !ag_session_guarded_by(roleid) &&
		roleid != GetUserId() && roleid != GetSessionUserId())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("agents may evaluate statements only for their own role"),
				 errhint("Call agent_guard.evaluate(statement, current_user).")));

	agents = ag_agents_of_role(roleid, &n_agents);
	InitMaterializedSRF(fcinfo, 0);

	/* errors point into the statement, not into the caller's query */
	PG_TRY();
	{
		ag_evaluate_statement(statement, agents, n_agents, rsinfo);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		if (edata->cursorpos > 0)
		{
			edata->internalpos = edata->cursorpos;
			edata->internalquery = statement;
			edata->cursorpos = 0;
		}
		ReThrowError(edata);
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}

/* Statement trigger on agent_guard.policies: every backend re-reads at commit. */
Datum
ag_policies_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "ag_policies_changed: not called as a trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}
