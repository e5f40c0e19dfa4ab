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
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/scanner.h"
#include "utils/acl.h"
#include "catalog/pg_type.h"
#include "utils/datetime.h"
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

/* Longest statement text an audit record carries, in bytes. */
#define AG_MAX_LOGGED_STATEMENT (64 * 1024)

/*
 * Statement text as agent_guard.log_statement wants it recorded, cut to
 * AG_MAX_LOGGED_STATEMENT bytes so that a huge statement still leaves its
 * record (approval requests keep the full text: they are what runs).
 */
const char *
ag_logged_statement(const char *statement)
{
	const char *logged;
	int			length;
	int			kept;

	if (statement == NULL || ag_log_statement == AG_LOG_STATEMENT_OFF)
		return NULL;
	logged = ag_log_statement == AG_LOG_STATEMENT_REDACTED ?
		ag_redact_statement(statement) : statement;
	length = strlen(logged);
	if (length <= AG_MAX_LOGGED_STATEMENT)
		return logged;
	kept = pg_mbcliplen(logged, length, AG_MAX_LOGGED_STATEMENT);
	return psprintf("%.*s... [%d bytes, cut to %d]", kept, logged, length, kept);
}

/*
 * Write one decision as a JSON line to the server log, with the keys and
 * formats of an audit_log row (as the writer logs stored rows), for the
 * decisions that could not be stored.
 */
void
ag_log_event(const AgEvent *event)
{
	StringInfoData buf;
	ListCell   *lc;
	FullTransactionId fxid = GetTopFullTransactionIdIfAny();
	char		ts[MAXDATELEN + 1];

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	ag_json_int(&buf, "seq", event->seq, event->seq != 0);
	JsonEncodeDateTime(ts, TimestampTzGetDatum(GetCurrentTimestamp()), TIMESTAMPTZOID, NULL);
	ag_json_field(&buf, "ts", ts);
	ag_json_field(&buf, "database", get_database_name(MyDatabaseId));
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
	ag_json_field(&buf, "xid", FullTransactionIdIsValid(fxid) ?
				  psprintf(UINT64_FORMAT, U64FromFullTransactionId(fxid)) : NULL);
	ag_json_field(&buf, "prev_hash", NULL);
	ag_json_field(&buf, "hash", NULL);
	appendStringInfoChar(&buf, '}');

	ereport(ag_log_level,
			(errmsg_internal(AG_LOG_PREFIX "%s", buf.data),
			 errhidestmt(true),
			 errhidecontext(true)));
	pfree(buf.data);
}

/*
 * Is the token just lexed (NUL-terminated in the scanner's buffer) a
 * literal?  Judged by its text, as the token codes are not installed with
 * every server's headers.
 */
static bool
ag_token_is_literal(const char *t)
{
	if (t[0] == '\'')
		return true;
	if (strchr("eEbBxXnN", t[0]) && t[0] != '\0' && t[1] == '\'')
		return true;
	if ((t[0] == 'u' || t[0] == 'U') && t[1] == '&' && t[2] == '\'')
		return true;
	if (t[0] == '$' && !isdigit((unsigned char) t[1]))
		return true;			/* dollar quoting; $1 is a parameter */
	if (isdigit((unsigned char) t[0]) || (t[0] == '.' && isdigit((unsigned char) t[1])))
		return true;
	return false;
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
			if (ag_token_is_literal(yyextra.scanbuf + yylloc))
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
		if (token != 0 && pg_strcasecmp(yyextra.scanbuf + yylloc, "prepare") == 0)
		{
			while ((token = core_yylex(&yylval, &yylloc, yyscanner)) != 0)
			{
				if (token == '(')
					depth++;
				else if (token == ')')
					depth--;
				else if (depth == 0 && pg_strcasecmp(yyextra.scanbuf + yylloc, "as") == 0)
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
