/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  The approval queue: parking a statement as a request, approving it
 *	  (replayed as the requesting role, exactly once), rejecting it, and the
 *	  one-retry approval of statements that cannot run in a transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "access/xact.h"
#include "funcapi.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ag_approve_pending);
PG_FUNCTION_INFO_V1(ag_reject_pending);
PG_FUNCTION_INFO_V1(ag_wait_for_decision);

/* The approved statement being replayed, while approve_pending() runs it. */
typedef struct AgReplay
{
	bool		active;
	int			depth;			/* statement depth of the replayed statement */
	int64		request_id;
	char	   *command;
	List	   *objects;		/* of char *, as the approver saw them */
	List	   *relids;			/* relation OIDs at parking time */
	bool		nested;			/* parked for a statement inside the one sent */
	bool		consumed;
} AgReplay;

static AgReplay replay;

/* Wake wait_for_decision() callers once a decision of ours commits. */
static bool decided_in_xact = false;
static bool decision_callback_registered = false;

static void
ag_decision_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && decided_in_xact && ag_shared != NULL)
		ConditionVariableBroadcast(&ag_shared->decision_cv);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
		decided_in_xact = false;
}

static void
ag_wake_waiters_at_commit(void)
{
	if (!decision_callback_registered)
	{
		RegisterXactCallback(ag_decision_xact_callback, NULL);
		decision_callback_registered = true;
	}
	decided_in_xact = true;
}

/* ---------- literals for the writer ---------- */

/* A text[] literal, with every element quoted. */
char *
ag_text_array_literal(List *strings)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, strings)
	{
		const char *p = lfirst(lc);

		if (lc != list_head(strings))
			appendStringInfoChar(&buf, ',');
		if (p == NULL)
		{
			appendStringInfoString(&buf, "NULL");
			continue;
		}
		appendStringInfoChar(&buf, '"');
		for (; *p; p++)
		{
			if (*p == '"' || *p == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, *p);
		}
		appendStringInfoChar(&buf, '"');
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

static char *
ag_oid_array_literal(List *oids)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, oids)
	{
		if (lc != list_head(oids))
			appendStringInfoChar(&buf, ',');
		appendStringInfo(&buf, "%u", lfirst_oid(lc));
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* The objects and relation OIDs a statement changes (reads left out). */
static void
ag_changed_objects(List *pairs, List **objects, List **relids)
{
	ListCell   *lc;

	*objects = NIL;
	*relids = NIL;
	foreach(lc, pairs)
	{
		AgPair	   *pair = lfirst(lc);

		if (ag_command_groups(pair->command) & (AG_GROUP_READ | AG_GROUP_SESSION))
			continue;
		if (!list_member(*objects, makeString(pair->object)))
			*objects = lappend(*objects, makeString(pair->object));
		if (OidIsValid(pair->relid))
			*relids = list_append_unique_oid(*relids, pair->relid);
	}
}

static List *
ag_string_values(List *strings)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, strings)
		result = lappend(result, strVal(lfirst(lc)));
	return result;
}

/* Parameter types and values of an extended-protocol statement, as text. */
static void
ag_param_literals(ParamListInfo params, char **types, char **values)
{
	List	   *type_list = NIL;
	List	   *value_list = NIL;
	int			i;

	*types = NULL;
	*values = NULL;
	if (params == NULL || params->numParams == 0 || params->paramFetch != NULL)
		return;
	for (i = 0; i < params->numParams; i++)
	{
		ParamExternData *prm = &params->params[i];

		type_list = lappend_oid(type_list, prm->ptype);
		if (prm->isnull || !OidIsValid(prm->ptype))
			value_list = lappend(value_list, NULL);
		else
		{
			Oid			typoutput;
			bool		isvarlena;

			getTypeOutputInfo(prm->ptype, &typoutput, &isvarlena);
			value_list = lappend(value_list, OidOutputFunctionCall(typoutput, prm->value));
		}
	}
	*types = ag_oid_array_literal(type_list);
	*values = ag_text_array_literal(value_list);
}

static char *
ag_xid_text(void)
{
	FullTransactionId fxid = GetTopFullTransactionIdIfAny();

	if (!FullTransactionIdIsValid(fxid))
		return NULL;
	return psprintf(UINT64_FORMAT, U64FromFullTransactionId(fxid));
}

/*
 * Park a statement: store it as a pending request (with its audit record
 * and the NOTIFY) through the writer.  Returns false with *error when it
 * could not be stored.
 */
bool
ag_park(const AgStatement *stmt, const AgPair *pair, const AgDecision *decision,
		const char *agent, int64 *request_id, char **error)
{
	const char *fields[22];
	List	   *objects;
	List	   *relids;
	char	   *param_types;
	char	   *param_values;
	char	   *logged;

	ag_changed_objects(stmt->pairs, &objects, &relids);
	ag_param_literals(stmt->params, &param_types, &param_values);
	logged = ag_log_statement == AG_LOG_STATEMENT_OFF ? NULL :
		ag_log_statement == AG_LOG_STATEMENT_REDACTED ? ag_redact_statement(stmt->text) :
		(char *) stmt->text;

	fields[0] = GetUserNameFromId(GetSessionUserId(), false);
	fields[1] = GetUserNameFromId(GetUserId(), false);
	fields[2] = quote_identifier(agent);
	fields[3] = application_name;
	fields[4] = MyProcPort && MyProcPort->remote_host ? MyProcPort->remote_host : NULL;
	fields[5] = pair->command;
	fields[6] = ag_text_array_literal(ag_string_values(objects));
	fields[7] = stmt->toplevel;
	fields[8] = stmt->nested ? stmt->text : NULL;
	fields[9] = namespace_search_path;
	fields[10] = psprintf("%lld", (long long) decision->policy_id);
	fields[11] = psprintf("%d", decision->approvals_required);
	fields[12] = param_types;
	fields[13] = param_values;
	fields[14] = psprintf("%d", ag_approval_ttl);
	fields[15] = stmt->needs_own_transaction ? "true" : "false";
	fields[16] = stmt->nested ?
		psprintf("%s; parked for the nested statement: %s", decision->reason, stmt->text) :
		decision->reason;
	fields[17] = logged;
	fields[18] = psprintf("%d", MyProcPid);
	fields[19] = ag_xid_text();
	fields[20] = ag_oid_array_literal(relids);
	fields[21] = stmt->estimated_rows >= 0 ? psprintf("%.0f", stmt->estimated_rows) : NULL;

	return ag_write_record(AG_RECORD_REQUEST, fields, lengthof(fields), request_id, error);
}

/* Whitespace-insensitive comparison key of a statement. */
static char *
ag_normalize_statement(const char *text)
{
	StringInfoData buf;
	bool		space = false;
	int			len;

	initStringInfo(&buf);
	for (; *text; text++)
	{
		if (isspace((unsigned char) *text))
		{
			space = buf.len > 0;
			continue;
		}
		if (space)
			appendStringInfoChar(&buf, ' ');
		space = false;
		appendStringInfoChar(&buf, *text);
	}
	len = buf.len;
	while (len > 0 && (buf.data[len - 1] == ';' || buf.data[len - 1] == ' '))
		len--;
	buf.data[len] = '\0';
	return buf.data;
}

/*
 * Is there an approved one-retry request for this very statement by this
 * role?  If so, consume it durably (exactly once) and return true.
 */
bool
ag_claim_retry(const AgStatement *stmt, int64 *request_id)
{
	Oid			save_userid;
	int			save_sec_context;
	Oid			argtypes[1] = {NAMEOID};
	Datum		values[1];
	char	   *wanted = ag_normalize_statement(stmt->toplevel);
	List	   *candidates = NIL;
	ListCell   *lc;

	if (!ag_extension_present())
		return false;
	values[0] = DirectFunctionCall1(namein,
									CStringGetDatum(GetUserNameFromId(GetUserId(), false)));

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	ag_nesting++;
	PG_TRY();
	{
		uint64		i;

		SetUserIdAndSecContext(ag_extension_owner(),
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT id, statement FROM agent_guard.requests"
								  " WHERE status OPERATOR(pg_catalog.=) 'approved' AND needs_retry"
								  " AND retry_until OPERATOR(pg_catalog.>) pg_catalog.now()"
								  " AND \"current_user\" OPERATOR(pg_catalog.=) $1"
								  " ORDER BY id",
								  1, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read agent_guard.requests");
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
														 SPI_tuptable->tupdesc, 1, &isnull));
			char	   *text = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

			if (strcmp(ag_normalize_statement(text), wanted) == 0)
			{
				MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
				int64	   *copy = palloc(sizeof(int64));

				*copy = id;
				candidates = lappend(candidates, copy);
				MemoryContextSwitchTo(old);
			}
		}
		SPI_finish();
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_FINALLY();
	{
		ag_nesting--;
	}
	PG_END_TRY();

	foreach(lc, candidates)
	{
		const char *fields[1];
		char	   *error;
		int64		claimed;

		fields[0] = psprintf("%lld", (long long) *(int64 *) lfirst(lc));
		if (ag_write_record(AG_RECORD_CLAIM_RETRY, fields, 1, &claimed, &error))
		{
			*request_id = claimed;
			return true;
		}
	}
	return false;
}

/*
 * During approve_pending(), the replayed statement runs if it is still the
 * statement the approver saw: same command, same objects, same relations.
 * Anything else it sets off (nested statements) is judged as usual.
 */
bool
ag_replay_covers(const AgStatement *stmt, int depth, int64 *request_id)
{
	List	   *objects;
	List	   *relids;
	ListCell   *lc;
	bool		same = true;
	bool		command_seen = false;

	if (!replay.active || replay.consumed)
		return false;
	/* a request parked for a nested statement covers that one, deeper down */
	if (replay.nested ? depth <= replay.depth : depth != replay.depth)
		return false;

	ag_changed_objects(stmt->pairs, &objects, &relids);
	/* reads and function calls around it are judged as usual */
	if (objects == NIL)
		return false;
	foreach(lc, stmt->pairs)
		if (strcmp(((AgPair *) lfirst(lc))->command, replay.command) == 0)
			command_seen = true;
	if (!command_seen || list_length(objects) != list_length(replay.objects) ||
		list_length(relids) != list_length(replay.relids))
		same = false;
	foreach(lc, objects)
		if (same && !list_member(replay.objects, lfirst(lc)))
			same = false;
	foreach(lc, relids)
		if (same && !list_member_oid(replay.relids, lfirst_oid(lc)))
			same = false;
	if (!same && replay.nested)
		return false;
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("request %lld no longer does what was approved",
						(long long) replay.request_id),
				 errdetail("It was approved as %s on %s; now it would run %s on %s.",
						   replay.command,
						   ag_text_array_literal(ag_string_values(replay.objects)),
						   stmt->pairs ? ((AgPair *) linitial(stmt->pairs))->command : "nothing",
						   ag_text_array_literal(ag_string_values(objects)))));
	*request_id = replay.request_id;
	/* once only: what this statement sets off is judged normally */
	replay.consumed = true;
	return true;
}

/* Is approve_pending() replaying a request in this backend? */
bool
ag_replay_active(int64 *request_id)
{
	if (replay.active && request_id)
		*request_id = replay.request_id;
	return replay.active;
}

/* Statements PostgreSQL refuses to run inside a transaction block. */
bool
ag_needs_own_transaction(Node *parsetree)
{
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_VacuumStmt:
			return ((VacuumStmt *) parsetree)->is_vacuumcmd;
		case T_CreatedbStmt:
		case T_DropdbStmt:
		case T_CreateTableSpaceStmt:
		case T_DropTableSpaceStmt:
		case T_AlterSystemStmt:
		case T_CreateSubscriptionStmt:
			return true;
		case T_IndexStmt:
			return ((IndexStmt *) parsetree)->concurrent;
		case T_DropStmt:
			return ((DropStmt *) parsetree)->concurrent;
		case T_ClusterStmt:
			return ((ClusterStmt *) parsetree)->relation == NULL;
		case T_ReindexStmt:
			{
				ReindexStmt *stmt = (ReindexStmt *) parsetree;

				if (stmt->kind == REINDEX_OBJECT_SYSTEM || stmt->kind == REINDEX_OBJECT_DATABASE)
					return true;
				foreach(lc, stmt->params)
					if (strcmp(((DefElem *) lfirst(lc))->defname, "concurrently") == 0)
						return true;
				return false;
			}
		default:
			return false;
	}
}

/* ---------- approve_pending() and reject_pending() ---------- */

typedef struct AgRequest
{
	int64		id;
	char	   *status;
	bool		expired;
	char	   *session_user;
	char	   *current_user;
	char	   *agent;
	Oid			agent_oid;
	char	   *command;
	List	   *objects;
	char	   *statement;
	bool		nested;
	char	   *search_path;
	int			approvals_required;
	bool		needs_retry;
	Datum		param_types;
	bool		param_types_null;
	Datum		param_values;
	bool		param_values_null;
	List	   *relids;
} AgRequest;

/* Lock and read a request; errors for unknown or already decided ones. */
static void
ag_lock_request(int64 id, AgRequest *request)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		objects;

	if (SPI_execute_with_args("SELECT id, status, expires_at OPERATOR(pg_catalog.<=) pg_catalog.now(),"
							  " \"session_user\", \"current_user\", agent::pg_catalog.text, command,"
							  " objects, statement, search_path, approvals_required, needs_retry,"
							  " param_types, param_values, relation_oids, nested_statement IS NOT NULL,"
							  " agent::pg_catalog.oid"
							  " FROM agent_guard.requests WHERE id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read agent_guard.requests");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("request %lld does not exist", (long long) id)));
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	request->id = id;
	request->status = SPI_getvalue(tuple, desc, 2);
	request->expired = DatumGetBool(SPI_getbinval(tuple, desc, 3, &isnull));
	request->session_user = SPI_getvalue(tuple, desc, 4);
	request->current_user = SPI_getvalue(tuple, desc, 5);
	request->agent = SPI_getvalue(tuple, desc, 6);
	request->command = SPI_getvalue(tuple, desc, 7);
	objects = SPI_getbinval(tuple, desc, 8, &isnull);
	request->objects = NIL;
	if (!isnull)
	{
		ArrayType  *array = DatumGetArrayTypeP(objects);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		for (i = 0; i < n; i++)
			if (!nulls[i])
				request->objects = lappend(request->objects,
										   makeString(TextDatumGetCString(elems[i])));
	}
	request->statement = SPI_getvalue(tuple, desc, 9);
	request->search_path = SPI_getvalue(tuple, desc, 10);
	request->approvals_required = DatumGetInt32(SPI_getbinval(tuple, desc, 11, &isnull));
	request->needs_retry = DatumGetBool(SPI_getbinval(tuple, desc, 12, &isnull));
	request->param_types = SPI_getbinval(tuple, desc, 13, &request->param_types_null);
	request->param_values = SPI_getbinval(tuple, desc, 14, &request->param_values_null);
	request->relids = NIL;
	{
		Datum		oids = SPI_getbinval(tuple, desc, 15, &isnull);

		if (!isnull)
		{
			ArrayType  *array = DatumGetArrayTypeP(oids);
			Datum	   *elems;
			bool	   *nulls;
			int			n;
			int			i;

			deconstruct_array(array, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
			for (i = 0; i < n; i++)
				request->relids = lappend_oid(request->relids, DatumGetObjectId(elems[i]));
		}
	}

	request->nested = DatumGetBool(SPI_getbinval(tuple, desc, 16, &isnull));
	request->agent_oid = DatumGetObjectId(SPI_getbinval(tuple, desc, 17, &isnull));
	if (isnull)
		request->agent_oid = InvalidOid;

	if (strcmp(request->status, "pending") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("request %lld is already %s", (long long) id, request->status),
				 errdetail("Only pending requests can be approved or rejected.")));
	if (request->expired)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("request %lld has expired", (long long) id),
				 errdetail("Requests expire agent_guard.approval_ttl after they are made."),
				 errhint("The agent can send the statement again to make a new request.")));
}

static char *
ag_approver_name(void)
{
	return GetUserNameFromId(GetSessionUserId(), false);
}

/* Record a decision about a request, when the approver's transaction commits. */
static void
ag_audit_decision(const AgRequest *request, const char *decision, const char *reason,
				  int64 rows)
{
	AgEvent		event;

	memset(&event, 0, sizeof(event));
	event.command = request->command;
	event.objects = request->objects;
	event.statement = request->statement;
	event.decision = decision;
	event.reason = reason;
	event.rows = rows;
	event.request_id = request->id;
	event.actor = ag_approver_name();
	event.agent = request->agent;
	event.session_user = request->session_user;
	event.current_user = request->current_user;
	ag_record_at_commit(&event);
}

static void
ag_set_status(const AgRequest *request, const char *status, const char *reason,
			  int64 rows, const char *error, bool retry)
{
	Oid			argtypes[7] = {INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, FLOAT8OID};
	Datum		values[7];
	char		nulls[7] = "       ";

	values[0] = Int64GetDatum(request->id);
	values[1] = CStringGetTextDatum(status);
	values[2] = CStringGetTextDatum(ag_approver_name());
	values[3] = Int64GetDatum(rows);
	if (rows < 0)
		nulls[3] = 'n';
	if (error)
		values[4] = CStringGetTextDatum(error);
	else
		nulls[4] = 'n';
	if (reason)
		values[5] = CStringGetTextDatum(reason);
	else
		nulls[5] = 'n';
	values[6] = Float8GetDatum((double) ag_retry_window);
	if (SPI_execute_with_args(retry ?
							  "UPDATE agent_guard.requests SET status = $2, decided_by = $3,"
							  " decided_at = pg_catalog.now(), rows = $4, error = $5,"
							  " reason = COALESCE($6, reason),"
							  " retry_until = pg_catalog.now() OPERATOR(pg_catalog.+)"
							  "  pg_catalog.make_interval(secs => $7)"
							  " WHERE id OPERATOR(pg_catalog.=) $1" :
							  "UPDATE agent_guard.requests SET status = $2, decided_by = $3,"
							  " decided_at = pg_catalog.now(), rows = $4, error = $5,"
							  " reason = COALESCE($6, reason)"
							  " WHERE id OPERATOR(pg_catalog.=) $1 AND $7 IS NOT NULL",
							  7, argtypes, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update request %lld", (long long) request->id);
}

/*
 * Run the approved statement as the requesting role, with the stored
 * search_path and parameters, in a subtransaction of the approver's
 * transaction.  Returns true with *rows, or false with *error.
 */
static bool
ag_replay_request(const AgRequest *request, int64 *rows, char **error)
{
	Oid			role = get_role_oid(request->current_user, true);
	Oid			agent = request->agent_oid;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	bool		ok = false;
	int			nargs = 0;
	Oid		   *argtypes = NULL;
	Datum	   *argvalues = NULL;
	char	   *argnulls = NULL;

	if (!OidIsValid(role))
	{
		*error = psprintf("role \"%s\" no longer exists", request->current_user);
		return false;
	}

	if (!request->param_types_null && !request->param_values_null)
	{
		Datum	   *types;
		Datum	   *texts;
		bool	   *type_nulls;
		bool	   *text_nulls;
		int			ntexts;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(request->param_types), OIDOID, sizeof(Oid), true,
						  TYPALIGN_INT, &types, &type_nulls, &nargs);
		deconstruct_array(DatumGetArrayTypeP(request->param_values), TEXTOID, -1, false,
						  TYPALIGN_INT, &texts, &text_nulls, &ntexts);
		if (ntexts != nargs)
			nargs = 0;
		argtypes = palloc(sizeof(Oid) * (nargs + 1));
		argvalues = palloc(sizeof(Datum) * (nargs + 1));
		argnulls = palloc(sizeof(char) * (nargs + 1));
		for (i = 0; i < nargs; i++)
		{
			Oid			typinput;
			Oid			typioparam;

			argtypes[i] = DatumGetObjectId(types[i]);
			argnulls[i] = text_nulls[i] ? 'n' : ' ';
			argvalues[i] = (Datum) 0;
			if (!text_nulls[i])
			{
				getTypeInputInfo(argtypes[i], &typinput, &typioparam);
				argvalues[i] = OidInputFunctionCall(typinput, TextDatumGetCString(texts[i]),
													typioparam, -1);
			}
		}
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	PG_TRY();
	{
		int			ret;

		save_nestlevel = NewGUCNestLevel();
		(void) set_config_option("search_path", request->search_path,
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);

		/*
		 * The agent's statement runs in the approver's session: as a
		 * security-restricted operation, so it leaves no temporary objects,
		 * cursors or role changes behind, and still guarded as the agent,
		 * whoever its current user turns out to be.
		 */
		SetUserIdAndSecContext(role, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		ag_set_replay_agent(agent);

		replay.active = true;
		replay.depth = ag_depth;
		replay.request_id = request->id;
		replay.command = request->command;
		replay.objects = request->objects;
		replay.relids = request->relids;
		replay.nested = request->nested;
		replay.consumed = false;

		ret = SPI_execute_with_args(request->statement, nargs, argtypes, argvalues,
									argnulls, false, 0);
		if (ret < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the statement could not be run: %s", SPI_result_code_string(ret))));
		*rows = (int64) SPI_processed;

		replay.active = false;
		ag_set_replay_agent(InvalidOid);
		SetUserIdAndSecContext(save_userid, save_sec_context);
		/* settings the statement changed, even without LOCAL, end with it */
		AtEOXact_GUC(false, save_nestlevel);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		replay.active = false;
		ag_set_replay_agent(InvalidOid);
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		SetUserIdAndSecContext(save_userid, save_sec_context);
		*error = edata->message;
	}
	PG_END_TRY();
	return ok;
}

static int64
ag_request_id_argument(FunctionCallInfo fcinfo)
{
	ag_require_argument(fcinfo, 0, "request_id");
	return PG_GETARG_INT64(0);
}

/* approve_pending(request_id bigint, note text DEFAULT NULL) RETURNS text */
Datum
ag_approve_pending(PG_FUNCTION_ARGS)
{
	int64		id;
	AgRequest	request;
	char	   *approver;
	const char *status;
	int64		approvals;
	Oid			argtypes[3] = {INT8OID, NAMEOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = "   ";
	bool		isnull;

	ag_require_not_agent("agent_guard.approve_pending()");
	id = ag_request_id_argument(fcinfo);
	approver = ag_approver_name();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ag_lock_request(id, &request);

	if (strcmp(approver, request.session_user) == 0 ||
		strcmp(approver, request.current_user) == 0 ||
		strcmp(GetUserNameFromId(GetOuterUserId(), false), request.current_user) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("you may not approve your own request %lld", (long long) id),
				 errhint("Another approver has to approve it.")));

	values[0] = Int64GetDatum(id);
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(approver));
	if (PG_ARGISNULL(1))
		nulls[2] = 'n';
	else
		values[2] = PG_GETARG_DATUM(1);
	if (SPI_execute_with_args("INSERT INTO agent_guard.approvals (request_id, approver, note)"
							  " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
							  3, argtypes, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the approval");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("you have already approved request %lld", (long long) id),
				 errdetail("It needs %d approvals from different approvers.",
						   request.approvals_required)));
	if (SPI_execute_with_args("SELECT pg_catalog.count(*) FROM agent_guard.approvals"
							  " WHERE request_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not count approvals");
	approvals = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	ag_wake_waiters_at_commit();
	if (approvals < request.approvals_required)
	{
		ag_audit_decision(&request, "approved",
						  psprintf("approval %lld of %d", (long long) approvals,
								   request.approvals_required), -1);
		status = "pending";
	}
	else if (request.needs_retry)
	{
		ag_set_status(&request, "approved", NULL, -1, NULL, true);
		ag_audit_decision(&request, "approved",
						  "approved for one retry by the agent within agent_guard.retry_window", -1);
		status = "approved";
	}
	else
	{
		int64		rows = -1;
		char	   *error = NULL;

		ag_audit_decision(&request, "approved", NULL, -1);
		if (ag_replay_request(&request, &rows, &error))
		{
			ag_set_status(&request, "executed", NULL, rows, NULL, false);
			ag_audit_decision(&request, "executed", NULL, rows);
			status = "executed";
		}
		else
		{
			ag_set_status(&request, "failed", NULL, -1, error, false);
			ag_audit_decision(&request, "failed", error, -1);
			status = "failed";
		}
	}
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(status));
}

/* reject_pending(request_id bigint, reason text DEFAULT NULL) RETURNS text */
Datum
ag_reject_pending(PG_FUNCTION_ARGS)
{
	int64		id;
	AgRequest	request;
	char	   *reason;

	ag_require_not_agent("agent_guard.reject_pending()");
	id = ag_request_id_argument(fcinfo);
	reason = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ag_lock_request(id, &request);
	ag_wake_waiters_at_commit();
	ag_set_status(&request, "rejected", reason ? reason : "rejected", -1, NULL, false);
	ag_audit_decision(&request, "rejected", reason, -1);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text("rejected"));
}

/* Milliseconds in an interval (months counted as 30 days). */
static int64
ag_interval_ms(const Interval *interval)
{
	return interval->time / 1000 +
		((int64) interval->day + (int64) interval->month * 30) * 86400000;
}

/*
 * wait_for_decision(request_id bigint, timeout interval DEFAULT '5 minutes')
 * RETURNS TABLE(status text, rows bigint, reason text): sleep until the
 * request is decided (woken by the decision's commit) or the timeout passes.
 * An agent may wait only for its own requests.
 */
Datum
ag_wait_for_decision(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		id;
	int64		timeout_ms;
	TimestampTz deadline;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	bool		checked_owner = false;
	bool		guarded = ag_caller_is_agent();
	char	   *session_user = GetUserNameFromId(GetSessionUserId(), false);
	char	   *outer_user = GetUserNameFromId(GetOuterUserId(), false);

	id = ag_request_id_argument(fcinfo);
	timeout_ms = ag_interval_ms(ag_interval_argument(fcinfo, 1, "timeout"));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("wait_for_decision() cannot see decisions from a REPEATABLE READ or SERIALIZABLE transaction"),
				 errhint("Call it outside an explicit transaction, or in a READ COMMITTED one.")));

	InitMaterializedSRF(fcinfo, 0);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	ConditionVariablePrepareToSleep(&ag_shared->decision_cv);
	for (;;)
	{
		Datum		arg[1] = {Int64GetDatum(id)};
		char	   *status;
		long		remaining;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT CASE WHEN status OPERATOR(pg_catalog.=) 'pending'"
								  "  AND expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
								  "  THEN 'expired' ELSE status END,"
								  " rows,"
								  " CASE WHEN status OPERATOR(pg_catalog.=) ANY ('{executed,approved}')"
								  "  THEN (SELECT pg_catalog.string_agg(a.approver OPERATOR(pg_catalog.||)"
								  "   COALESCE(': ' OPERATOR(pg_catalog.||) a.note, ''), '; ' ORDER BY a.approved_at)"
								  "   FROM agent_guard.approvals a WHERE a.request_id OPERATOR(pg_catalog.=) r.id)"
								  "  ELSE COALESCE(error, reason) END,"
								  " \"session_user\", \"current_user\""
								  " FROM agent_guard.requests r WHERE id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, arg, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read agent_guard.requests");
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("request %lld does not exist", (long long) id)));
		if (guarded && !checked_owner)
		{
			char	   *req_session = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
			char	   *req_current = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5);

			if (strcmp(req_session, session_user) != 0 && strcmp(req_current, outer_user) != 0 &&
				strcmp(req_current, session_user) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("agents may wait only for their own requests"),
						 errdetail("Request %lld was made by \"%s\".", (long long) id, req_current)));
			checked_owner = true;
		}
		status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (strcmp(status, "pending") != 0 || remaining <= 0)
		{
			MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);

			values[0] = CStringGetTextDatum(status);
			values[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &nulls[1]);
			values[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &nulls[2]);
			if (!nulls[2])
				values[2] = PointerGetDatum(PG_DETOAST_DATUM_COPY(values[2]));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			MemoryContextSwitchTo(old);
			SPI_finish();
			break;
		}
		SPI_finish();
		/* sleeps until a decision commits; the cap only bounds a missed wake-up */
		(void) ConditionVariableTimedSleep(&ag_shared->decision_cv, Min(remaining, 1000),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	PG_RETURN_VOID();
}
