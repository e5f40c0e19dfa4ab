/*-------------------------------------------------------------------------
 *
 * log_json.c
 *	  The structured server-log line written for every decision, and the
 *	  redaction of literals from statement text.
 *
 * Each line is "agent_guard: " followed by one JSON object, so it can be
 * grepped and parsed; under log_destination = jsonlog it is the (escaped)
 * message field of PostgreSQL's own JSON record.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "parser/scanner.h"
#include "parser/gram.h"
#include "utils/acl.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define AG_LOG_PREFIX "agent_guard: "

static void
ag_json_field(StringInfo buf, const char *key, const char *value)
{
	if (buf->len > 1)
		appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

static void
ag_json_int(StringInfo buf, const char *key, int64 value, bool present)
{
	if (buf->len > 1)
		appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	if (present)
		appendStringInfo(buf, ":%lld", (long long) value);
	else
		appendStringInfoString(buf, ":null");
}

/* Statement text as agent_guard.log_statement wants it recorded. */
static const char *
ag_logged_statement(const char *statement)
{
	if (statement == NULL || ag_log_statement == AG_LOG_STATEMENT_OFF)
		return NULL;
	if (ag_log_statement == AG_LOG_STATEMENT_REDACTED)
		return ag_redact_statement(statement);
	return statement;
}

/* Write one decision as a JSON line to the server log. */
void
ag_log_event(const AgEvent *event)
{
	StringInfoData buf;
	ListCell   *lc;
	TransactionId xid = GetTopTransactionIdIfAny();

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	ag_json_field(&buf, "ts", timestamptz_to_str(GetCurrentTimestamp()));
	ag_json_field(&buf, "database", get_database_name(MyDatabaseId));
	ag_json_int(&buf, "seq", event->seq, event->seq != 0);
	ag_json_int(&buf, "pid", MyProcPid, true);
	ag_json_field(&buf, "session_user", event->session_user ? event->session_user :
				  GetUserNameFromId(GetSessionUserId(), true));
	ag_json_field(&buf, "current_user", event->current_user ? event->current_user :
				  GetUserNameFromId(GetUserId(), true));
	ag_json_field(&buf, "agent", event->agent);
	ag_json_field(&buf, "application_name", application_name);
	ag_json_field(&buf, "client_addr",
				  MyProcPort && MyProcPort->remote_host ? MyProcPort->remote_host : NULL);
	ag_json_field(&buf, "command", event->command);
	appendStringInfoString(&buf, ",\"objects\":[");
	foreach(lc, event->objects)
	{
		if (lc != list_head(event->objects))
			appendStringInfoChar(&buf, ',');
		escape_json(&buf, strVal(lfirst(lc)));
	}
	appendStringInfoChar(&buf, ']');
	ag_json_field(&buf, "statement", ag_logged_statement(event->statement));
	ag_json_field(&buf, "decision", event->decision);
	ag_json_int(&buf, "policy_id", event->policy_id, event->policy_id != 0);
	ag_json_field(&buf, "reason", event->reason);
	ag_json_int(&buf, "rows", event->rows, event->rows >= 0);
	ag_json_int(&buf, "request_id", event->request_id, event->request_id != 0);
	ag_json_field(&buf, "actor", event->actor);
	ag_json_int(&buf, "xid", xid, TransactionIdIsValid(xid));
	appendStringInfoChar(&buf, '}');

	ereport(ag_log_level,
			(errmsg_internal(AG_LOG_PREFIX "%s", buf.data),
			 errhidestmt(true),
			 errhidecontext(true)));
	pfree(buf.data);
}

/* The fields of an audit_log row, in the order the writer's INSERT takes them. */
static int
ag_audit_fields(const AgEvent *event, const char **fields)
{
	List	   *objects = NIL;
	ListCell   *lc;
	FullTransactionId fxid = GetTopFullTransactionIdIfAny();

	foreach(lc, event->objects)
		objects = lappend(objects, strVal(lfirst(lc)));

	fields[0] = timestamptz_to_str(GetCurrentTimestamp());
	fields[1] = get_database_name(MyDatabaseId);
	fields[2] = psprintf("%d", MyProcPid);
	fields[3] = event->session_user ? event->session_user :
		GetUserNameFromId(GetSessionUserId(), true);
	fields[4] = event->current_user ? event->current_user :
		GetUserNameFromId(GetUserId(), true);
	fields[5] = event->agent;
	fields[6] = application_name;
	fields[7] = MyProcPort && MyProcPort->remote_host ? MyProcPort->remote_host : NULL;
	fields[8] = event->command;
	fields[9] = ag_text_array_literal(objects);
	fields[10] = ag_logged_statement(event->statement);
	fields[11] = event->decision;
	fields[12] = event->policy_id ? psprintf("%lld", (long long) event->policy_id) : NULL;
	fields[13] = event->reason;
	fields[14] = event->rows >= 0 ? psprintf("%lld", (long long) event->rows) : NULL;
	fields[15] = event->request_id ? psprintf("%lld", (long long) event->request_id) : NULL;
	fields[16] = event->actor;
	fields[17] = FullTransactionIdIsValid(fxid) ?
		psprintf(UINT64_FORMAT, U64FromFullTransactionId(fxid)) : NULL;
	return 18;
}

/*
 * Store the audit record of a decision durably, through the writer, before
 * the agent hears of it.  Returns false with *error when it was not stored.
 * The writer logs the JSON line of the stored row.
 */
bool
ag_store_audit(const AgEvent *event, int64 *seq, char **error)
{
	const char *fields[18];
	int			n = ag_audit_fields(event, fields);

	return ag_write_record(AG_RECORD_AUDIT, fields, n, seq, error);
}

/*
 * Record a decision: in audit_log through the writer (waiting for the
 * commit when durable), and in the server log.  Where nothing can be
 * stored (no extension here, a standby, a failing writer) the backend
 * writes the server-log line itself.
 */
void
ag_record_event(AgEvent *event, bool durable)
{
	char	   *error = NULL;

	if (ag_extension_present() && !RecoveryInProgress())
	{
		const char *fields[18];
		int			n = ag_audit_fields(event, fields);

		if (durable ? ag_write_record(AG_RECORD_AUDIT, fields, n, &event->seq, &error)
			: ag_send_record(AG_RECORD_AUDIT, fields, n, &error))
			return;
		ereport(LOG,
				(durable ?
				 errmsg("agent_guard could not store the audit record of a refusal: %s", error) :
				 errmsg("agent_guard could not store the audit record of a decision: %s", error),
				 errhidestmt(true)));
	}
	ag_log_event(event);
}

/* Decisions of this transaction (approvals), recorded when it commits. */
static List *events_at_commit = NIL;
static bool at_commit_registered = false;

static void
ag_events_xact_callback(XactEvent xact_event, void *arg)
{
	ListCell   *lc;
	List	   *events = events_at_commit;

	events_at_commit = NIL;
	if (xact_event != XACT_EVENT_PRE_COMMIT)
		return;
	foreach(lc, events)
		ag_record_event((AgEvent *) lfirst(lc), true);
}

/*
 * Record a decision if and when the current transaction commits: stored
 * through the writer just before the commit, so a rolled-back approval or
 * policy change leaves no record claiming it happened, and a committed one
 * is in audit_log when the caller gets its answer.
 */
void
ag_record_at_commit(const AgEvent *event)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	AgEvent    *copy = palloc(sizeof(AgEvent));
	ListCell   *lc;

	*copy = *event;
	copy->objects = NIL;
	foreach(lc, event->objects)
		copy->objects = lappend(copy->objects, makeString(pstrdup(strVal(lfirst(lc)))));
#define AG_COPY(field) copy->field = event->field ? pstrdup(event->field) : NULL
	AG_COPY(command);
	AG_COPY(statement);
	AG_COPY(decision);
	AG_COPY(reason);
	AG_COPY(actor);
	AG_COPY(agent);
	AG_COPY(session_user);
	AG_COPY(current_user);
#undef AG_COPY
	events_at_commit = lappend(events_at_commit, copy);
	MemoryContextSwitchTo(old);
	if (!at_commit_registered)
	{
		RegisterXactCallback(ag_events_xact_callback, NULL);
		at_commit_registered = true;
	}
}

/*
 * Replace every literal in a statement with '?', so values (passwords,
 * personal data) stay out of the log.  Text the lexer cannot read is
 * replaced whole.
 */
char *
ag_redact_statement(const char *statement)
{
	StringInfoData buf;
	MemoryContext oldcontext = CurrentMemoryContext;

	initStringInfo(&buf);
	PG_TRY();
	{
		core_yyscan_t yyscanner;
		core_yy_extra_type yyextra;
		core_YYSTYPE yylval;
		YYLTYPE		yylloc;
		int			copied = 0;

		yyscanner = scanner_init(statement, &yyextra, &ScanKeywords, ScanKeywordTokens);
		for (;;)
		{
			int			token = core_yylex(&yylval, &yylloc, yyscanner);

			if (token == 0)
				break;
			if (token == SCONST || token == USCONST || token == ICONST ||
				token == FCONST || token == BCONST || token == XCONST)
			{
				int			length = strlen(yyextra.scanbuf + yylloc);

				appendBinaryStringInfo(&buf, statement + copied, yylloc - copied);
				appendStringInfoChar(&buf, '?');
				copied = yylloc + length;
			}
		}
		appendStringInfoString(&buf, statement + copied);
		scanner_finish(yyscanner);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		FlushErrorState();
		resetStringInfo(&buf);
		appendStringInfoString(&buf, "(statement redacted)");
	}
	PG_END_TRY();
	return buf.data;
}

/*
 * The query of a PREPARE statement ("PREPARE name [(types)] AS query"), or
 * NULL if the text is not one.  A prepared statement's plan carries the
 * whole PREPARE text; what a request must store and replay is the query.
 */
char *
ag_prepared_query(const char *statement)
{
	char	   *query = NULL;
	MemoryContext oldcontext = CurrentMemoryContext;

	PG_TRY();
	{
		core_yyscan_t yyscanner;
		core_yy_extra_type yyextra;
		core_YYSTYPE yylval;
		YYLTYPE		yylloc;
		int			token;
		int			depth = 0;

		yyscanner = scanner_init(statement, &yyextra, &ScanKeywords, ScanKeywordTokens);
		token = core_yylex(&yylval, &yylloc, yyscanner);
		if (token == PREPARE)
		{
			while ((token = core_yylex(&yylval, &yylloc, yyscanner)) != 0)
			{
				if (token == '(')
					depth++;
				else if (token == ')')
					depth--;
				else if (token == AS && depth == 0)
				{
					const char *rest = statement + yylloc + 2;

					while (isspace((unsigned char) *rest))
						rest++;
					query = pstrdup(rest);
					break;
				}
			}
		}
		scanner_finish(yyscanner);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		FlushErrorState();
		query = NULL;
	}
	PG_END_TRY();
	return query;
}
