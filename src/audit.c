/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  Audit records: what is stored in agent_guard.audit_log and when, the
 *	  append-only protection of the trail, and purging it.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ag_audit_protect);
PG_FUNCTION_INFO_V1(ag_purge_audit);

/* True while purge_audit() deletes: the only way rows leave the trail. */
static bool purging = false;

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

		AgRecordKind kind = event->alert ? AG_RECORD_ALERT : AG_RECORD_AUDIT;

		if (durable ? ag_write_record(kind, fields, n, &event->seq, &error)
			: ag_send_record(kind, fields, n, &error))
			return;
		ereport(LOG,
				(errmsg("agent_guard could not store the audit record of a decision: %s", error),
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

/* Trigger on audit_log and audit_anchor: rows are never changed or removed. */
Datum
ag_audit_protect(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "ag_audit_protect: not called as a trigger");
	if (purging && TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_trigtuple);
	if (purging && TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is append-only", RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("agent_guard's audit trail is never changed; old rows are removed with agent_guard.purge_audit()."),
			 errhint("Read it through agent_guard.audit_events.")));
	return PointerGetDatum(NULL);
}

/*
 * purge_audit(older_than interval) RETURNS bigint: remove the oldest rows,
 * keeping the chain verifiable from the last removed row (the anchor).
 */
Datum
ag_purge_audit(PG_FUNCTION_ARGS)
{
	Interval   *older_than;
	Oid			argtypes[1] = {INTERVALOID};
	Datum		values[1];
	int64		purged = 0;
	bool		isnull;

	ag_require_not_agent("agent_guard.purge_audit()");
	older_than = ag_interval_argument(fcinfo, 0, "older_than");
	values[0] = PointerGetDatum(older_than);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* what to remove: every row up to the last one older than the cut */
	if (SPI_execute_with_args("SELECT seq, hash FROM agent_guard.audit_log"
							  " WHERE seq OPERATOR(pg_catalog.=) (SELECT pg_catalog.max(seq)"
							  "  FROM agent_guard.audit_log"
							  "  WHERE ts OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $1))"
							  " FOR UPDATE",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read agent_guard.audit_log");
	if (SPI_processed == 1)
	{
		Datum		last_seq = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		Datum		last_hash = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		Oid			anchor_types[2] = {INT8OID, BYTEAOID};
		Datum		anchor_values[2] = {last_seq, last_hash};

		/*
		 * No lock against the writer: rows up to last_seq are committed and
		 * never change, and rows written meanwhile chain on from them.
		 */
		purging = true;
		PG_TRY();
		{
			if (SPI_execute_with_args("DELETE FROM agent_guard.audit_log"
									  " WHERE seq OPERATOR(pg_catalog.<=) $1",
									  1, anchor_types, anchor_values, NULL, false, 0) != SPI_OK_DELETE)
				elog(ERROR, "could not purge agent_guard.audit_log");
			purged = (int64) SPI_processed;
			if (SPI_execute_with_args("INSERT INTO agent_guard.audit_anchor (seq, hash) VALUES ($1, $2)"
									  " ON CONFLICT (only_row) DO UPDATE SET seq = excluded.seq,"
									  "  hash = excluded.hash, purged_at = pg_catalog.now()",
									  2, anchor_types, anchor_values, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not move the audit anchor");
		}
		PG_FINALLY();
		{
			purging = false;
		}
		PG_END_TRY();
	}
	SPI_finish();

	ag_log_change("PURGE AUDIT", "agent_guard.audit_log",
				  psprintf("removed %lld rows", (long long) purged), 0);
	PG_RETURN_INT64(purged);
}
