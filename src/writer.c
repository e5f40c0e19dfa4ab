/*-------------------------------------------------------------------------
 *
 * writer.c
 *	  Durable writes that must survive the agent's transaction: parked
 *	  requests and refusal records are handed to a writer worker of the
 *	  backend's database, which commits them in its own transaction and
 *	  acknowledges; the backend waits up to agent_guard.write_timeout.
 *
 * One writer per database is started on need as a dynamic background
 * worker.  It leaves after a few idle seconds (so DROP DATABASE is not kept
 * waiting by it), and if it dies, the next record that needs it starts a
 * new one.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

bool		ag_am_writer = false;

/* A writer with nothing to do for this long leaves. */
#define AG_WRITER_IDLE_MS 2000L

/* The statement that stores each kind of record; every parameter is text. */
static const char *const record_sql[] = {
	[AG_RECORD_REQUEST] =
	"WITH r AS ("
	" INSERT INTO agent_guard.requests (\"session_user\", \"current_user\", agent,"
	"  application_name, client_addr, command, objects, statement, nested_statement,"
	"  search_path, policy_id, approvals_required, param_types, param_values,"
	"  expires_at, needs_retry, reason, relation_oids, estimated_rows)"
	" VALUES ($1, $2, $3::pg_catalog.regrole, $4, $5, $6, $7::pg_catalog.text[], $8, $9,"
	"  $10, $11::pg_catalog.int8, $12::pg_catalog.int4, $13::pg_catalog.oid[],"
	"  $14::pg_catalog.text[],"
	"  pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $15::pg_catalog.float8),"
	"  $16::pg_catalog.bool, $17, $21::pg_catalog.oid[], $22::pg_catalog.int8)"
	" RETURNING *),"
	" a AS ("
	" INSERT INTO agent_guard.audit_log (pid, \"session_user\", \"current_user\", agent,"
	"  application_name, client_addr, command, objects, statement, decision, policy_id,"
	"  reason, request_id, xid)"
	" SELECT $19::pg_catalog.int4, r.\"session_user\", r.\"current_user\", pg_catalog.pg_get_userbyid(r.agent),"
	"  r.application_name, r.client_addr, r.command, r.objects, $18, 'parked', r.policy_id,"
	"  r.reason, r.id, $20::pg_catalog.xid8 FROM r"
	" RETURNING *)"
	" SELECT r.id, (SELECT pg_catalog.row_to_json(a)::pg_catalog.text FROM a),"
	"  pg_catalog.pg_notify('agent_guard_pending',"
	"  pg_catalog.json_build_object('id', r.id, 'agent', pg_catalog.pg_get_userbyid(r.agent),"
	"   'command', r.command, 'objects', r.objects)::pg_catalog.text)"
	" FROM r",
	[AG_RECORD_AUDIT] =
	"INSERT INTO agent_guard.audit_log (ts, database, pid, \"session_user\", \"current_user\","
	"  agent, application_name, client_addr, command, objects, statement, decision,"
	"  policy_id, reason, rows, request_id, actor, xid)"
	" VALUES ($1::pg_catalog.timestamptz, $2, $3::pg_catalog.int4, $4, $5, $6, $7, $8, $9,"
	"  $10::pg_catalog.text[], $11, $12, $13::pg_catalog.int8, $14, $15::pg_catalog.int8,"
	"  $16::pg_catalog.int8, $17, $18::pg_catalog.xid8)"
	" RETURNING seq, pg_catalog.row_to_json(audit_log.*)::pg_catalog.text",
	[AG_RECORD_ALERT] =
	"WITH a AS ("
	" INSERT INTO agent_guard.audit_log (ts, database, pid, \"session_user\", \"current_user\","
	"  agent, application_name, client_addr, command, objects, statement, decision,"
	"  policy_id, reason, rows, request_id, actor, xid)"
	" VALUES ($1::pg_catalog.timestamptz, $2, $3::pg_catalog.int4, $4, $5, $6, $7, $8, $9,"
	"  $10::pg_catalog.text[], $11, $12, $13::pg_catalog.int8, $14, $15::pg_catalog.int8,"
	"  $16::pg_catalog.int8, $17, $18::pg_catalog.xid8)"
	" RETURNING *)"
	" SELECT a.seq, pg_catalog.row_to_json(a)::pg_catalog.text,"
	"  pg_catalog.pg_notify('agent_guard_alert', pg_catalog.json_build_object("
	"   'seq', a.seq, 'agent', a.agent, 'event', a.decision, 'reason', a.reason)::pg_catalog.text)"
	" FROM a",
	[AG_RECORD_CLAIM_RETRY] =
	"UPDATE agent_guard.requests SET status = 'executed', decided_at = pg_catalog.now()"
	" WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.int8 AND status OPERATOR(pg_catalog.=) 'approved'"
	"  AND needs_retry AND retry_until OPERATOR(pg_catalog.>) pg_catalog.now()"
	" RETURNING id",
};

/* ---------- record encoding: nfields, then (length, bytes) each; -1 is NULL ---------- */

static void
ag_encode_record(StringInfo buf, const char *const *fields, int nfields)
{
	int			i;

	appendBinaryStringInfo(buf, (char *) &nfields, sizeof(int32));
	for (i = 0; i < nfields; i++)
	{
		int32		len = fields[i] ? (int32) strlen(fields[i]) : -1;

		appendBinaryStringInfo(buf, (char *) &len, sizeof(int32));
		if (len > 0)
			appendBinaryStringInfo(buf, fields[i], len);
	}
}

static int
ag_decode_record(const char *data, Datum *values, char *nulls)
{
	int32		nfields;
	int			i;

	memcpy(&nfields, data, sizeof(int32));
	data += sizeof(int32);
	for (i = 0; i < nfields && i < AG_MAX_RECORD_FIELDS; i++)
	{
		int32		len;

		memcpy(&len, data, sizeof(int32));
		data += sizeof(int32);
		if (len < 0)
		{
			values[i] = (Datum) 0;
			nulls[i] = 'n';
			continue;
		}
		values[i] = PointerGetDatum(cstring_to_text_with_len(data, len));
		nulls[i] = ' ';
		data += len;
	}
	return nfields;
}

/* ---------- backend side ---------- */

static bool
ag_writer_alive(AgWriter *writer)
{
	return writer->pid != 0 && kill(writer->pid, 0) == 0;
}

/*
 * Wake the writer of this database, starting one if there is none.
 * Returns false with *error set when no writer can be had.
 */
static bool
ag_wake_writer(Oid dboid, char **error)
{
	AgWriter   *writer = NULL;
	AgWriter   *free_writer = NULL;
	Latch	   *latch = NULL;
	BackgroundWorker worker;
	int			i;

	LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < AG_MAX_WRITERS; i++)
	{
		if (ag_shared->writers[i].dboid == dboid)
			writer = &ag_shared->writers[i];
		else if (ag_shared->writers[i].dboid == InvalidOid && free_writer == NULL)
			free_writer = &ag_shared->writers[i];
	}
	if (writer && writer->latch && ag_writer_alive(writer))
	{
		latch = writer->latch;
		LWLockRelease(ag_shared->lock);
		SetLatch(latch);
		return true;
	}
	if (writer && writer->starting &&
		!TimestampDifferenceExceeds(writer->start_requested, GetCurrentTimestamp(), 10000))
	{
		LWLockRelease(ag_shared->lock);
		return true;
	}
	if (writer == NULL)
		writer = free_writer;
	if (writer == NULL)
	{
		LWLockRelease(ag_shared->lock);
		*error = psprintf("no agent_guard writer slot is free (at most %d databases)", AG_MAX_WRITERS);
		return false;
	}
	writer->dboid = dboid;
	writer->pid = 0;
	writer->latch = NULL;
	writer->starting = true;
	writer->start_requested = GetCurrentTimestamp();
	LWLockRelease(ag_shared->lock);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	/* not restarted by the postmaster: the next record starts a writer again */
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "%s", "agent_guard");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", "ag_writer_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "agent_guard writer for database %u", dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", "agent_guard writer");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = 0;
	if (!RegisterDynamicBackgroundWorker(&worker, NULL))
	{
		LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
		writer->starting = false;
		writer->dboid = InvalidOid;
		LWLockRelease(ag_shared->lock);
		*error = pstrdup("could not start the agent_guard writer (max_worker_processes reached)");
		return false;
	}
	return true;
}

/*
 * Put a record in this backend's slot, waiting (until deadline) for the
 * slot to be free and for arena space.  Returns false with *error if it
 * could not be queued.
 */
static bool
ag_enqueue(AgRecordKind kind, const char *const *fields, int nfields, bool async,
		   TimestampTz deadline, char **error)
{
	StringInfoData buf;
	AgSlot	   *slot;
	int			procno = AG_MY_PROC_NUMBER;

	if (ag_shared == NULL || RecoveryInProgress())
	{
		*error = pstrdup("the server is in recovery, so nothing can be stored");
		return false;
	}
	if (procno < 0 || procno >= ag_shared->nslots)
	{
		*error = pstrdup("this process has no agent_guard queue slot");
		return false;
	}
	initStringInfo(&buf);
	ag_encode_record(&buf, fields, nfields);
	if ((Size) buf.len > ag_shared->arena_size)
	{
		*error = psprintf("the record of %d bytes is larger than agent_guard.queue_size", buf.len);
		return false;
	}

	slot = &ag_shared->slots[procno];
	ConditionVariablePrepareToSleep(&ag_shared->done_cv);
	for (;;)
	{
		Size		offset;
		long		remaining;

		LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
		if (slot->state == AG_SLOT_FREE && ag_arena_alloc(buf.len, &offset))
		{
			memcpy(ag_arena() + offset, buf.data, buf.len);
			slot->dboid = MyDatabaseId;
			slot->kind = kind;
			slot->async = async;
			slot->offset = offset;
			slot->length = buf.len;
			slot->result = 0;
			slot->error[0] = '\0';
			slot->state = AG_SLOT_QUEUED;
			LWLockRelease(ag_shared->lock);
			break;
		}
		LWLockRelease(ag_shared->lock);
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0)
		{
			ConditionVariableCancelSleep();
			*error = pstrdup("the agent_guard write queue stayed full");
			return false;
		}
		if (ConditionVariableTimedSleep(&ag_shared->done_cv, Min(remaining, 1000),
										PG_WAIT_EXTENSION))
			(void) ag_wake_writer(MyDatabaseId, error);
	}
	ConditionVariableCancelSleep();

	if (!ag_wake_writer(MyDatabaseId, error))
	{
		LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
		if (slot->state == AG_SLOT_QUEUED)
			slot->state = AG_SLOT_FREE;
		else
			slot->state = AG_SLOT_ABANDONED;
		LWLockRelease(ag_shared->lock);
		return false;
	}
	return true;
}

/*
 * Store one record durably through the writer and wait for its commit.
 * Returns true with *result (the new row's id) once it is committed;
 * false with *error when it was not stored within agent_guard.write_timeout
 * (or cannot be stored at all, as on a standby).  Never reports a record
 * as stored unless the writer committed it.
 */
bool
ag_write_record(AgRecordKind kind, const char *const *fields, int nfields,
				int64 *result, char **error)
{
	AgSlot	   *slot;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ag_write_timeout);
	bool		stored = false;

	*result = 0;
	*error = NULL;
	if (!ag_enqueue(kind, fields, nfields, false, deadline, error))
		return false;
	slot = &ag_shared->slots[AG_MY_PROC_NUMBER];

	/* wait for the commit acknowledgement */
	ConditionVariablePrepareToSleep(&ag_shared->done_cv);
	for (;;)
	{
		long		remaining;
		AgSlotState state;

		LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
		state = slot->state;
		if (state == AG_SLOT_DONE || state == AG_SLOT_FAILED)
		{
			stored = (state == AG_SLOT_DONE);
			*result = slot->result;
			if (!stored)
				*error = pstrdup(slot->error);
			slot->state = AG_SLOT_FREE;
			slot->length = 0;
			LWLockRelease(ag_shared->lock);
			ConditionVariableBroadcast(&ag_shared->done_cv);
			break;
		}
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0 && state != AG_SLOT_COMMITTING)
		{
			/*
			 * A queued record is withdrawn; one being written is abandoned,
			 * and the writer leaves it out before committing.  One already
			 * being committed is waited for: its answer comes at once.
			 */
			slot->state = (state == AG_SLOT_QUEUED) ? AG_SLOT_FREE : AG_SLOT_ABANDONED;
			LWLockRelease(ag_shared->lock);
			*error = psprintf("the agent_guard writer did not confirm within agent_guard.write_timeout (%d ms)",
							  ag_write_timeout);
			break;
		}
		LWLockRelease(ag_shared->lock);
		/* short sleeps: a writer that was just started has no latch to set us by */
		if (ConditionVariableTimedSleep(&ag_shared->done_cv, Max(Min(remaining, 1000), 10),
										PG_WAIT_EXTENSION))
			(void) ag_wake_writer(MyDatabaseId, error);
	}
	ConditionVariableCancelSleep();
	if (stored)
		*error = NULL;
	return stored;
}

/*
 * Hand a record to the writer without waiting for it to be stored (for
 * records whose loss must not stop the agent: allowed statements, monitor
 * mode, decisions already committed).  Returns false with *error if it
 * could not even be queued.
 */
bool
ag_send_record(AgRecordKind kind, const char *const *fields, int nfields, char **error)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ag_write_timeout);

	*error = NULL;
	return ag_enqueue(kind, fields, nfields, true, deadline, error);
}

/* ---------- the writer worker ---------- */

static AgWriter *my_writer = NULL;

static void
ag_writer_detach(int code, Datum arg)
{
	if (my_writer == NULL)
		return;
	LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
	if (my_writer->pid == MyProcPid)
	{
		my_writer->dboid = InvalidOid;
		my_writer->pid = 0;
		my_writer->latch = NULL;
		my_writer->starting = false;
	}
	LWLockRelease(ag_shared->lock);
}

/* Claim this database's writer entry, or leave if another writer has it. */
static void
ag_writer_attach(Oid dboid)
{
	int			i;
	AgWriter   *writer = NULL;

	LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < AG_MAX_WRITERS && writer == NULL; i++)
		if (ag_shared->writers[i].dboid == dboid)
			writer = &ag_shared->writers[i];
	for (i = 0; i < AG_MAX_WRITERS && writer == NULL; i++)
		if (ag_shared->writers[i].dboid == InvalidOid)
			writer = &ag_shared->writers[i];
	if (writer == NULL ||
		(writer->pid != 0 && writer->pid != MyProcPid && ag_writer_alive(writer)))
	{
		LWLockRelease(ag_shared->lock);
		proc_exit(0);
	}
	writer->dboid = dboid;
	writer->pid = MyProcPid;
	writer->latch = MyLatch;
	writer->starting = false;
	my_writer = writer;

	/*
	 * What a dead predecessor was storing: queue it again unless its
	 * transaction committed (it died between the commit and the answer).
	 */
	for (i = 0; i < ag_shared->nslots; i++)
	{
		AgSlot	   *slot = &ag_shared->slots[i];

		if (slot->dboid != dboid)
			continue;
		if (slot->state == AG_SLOT_COMMITTING &&
			TransactionIdIsValid(slot->commit_xid) &&
			TransactionIdDidCommit(slot->commit_xid))
		{
			if (slot->async)
			{
				slot->state = AG_SLOT_FREE;
				slot->length = 0;
			}
			else
				slot->state = AG_SLOT_DONE;
		}
		else if (slot->state == AG_SLOT_TAKEN || slot->state == AG_SLOT_COMMITTING)
			slot->state = AG_SLOT_QUEUED;
		else if (slot->state == AG_SLOT_ABANDONED)
		{
			slot->state = AG_SLOT_FREE;
			slot->length = 0;
		}
	}
	LWLockRelease(ag_shared->lock);
	before_shmem_exit(ag_writer_detach, (Datum) 0);
}

/*
 * A record the writer took from the queue.  One nobody waits for (async) is
 * copied out and its slot freed at once, so that its backend can queue the
 * next one while this batch is stored; the others stay in their slot.
 */
typedef struct AgTaken
{
	int			slot;			/* -1 for a copied-out async record */
	int			kind;
	bool		async;
	const char *data;
} AgTaken;

/* The writer's prepared statements, by record kind. */
static SPIPlanPtr record_plans[AG_RECORD_ALERT + 1];
static int	record_plan_nargs[AG_RECORD_ALERT + 1];

/*
 * Store one record inside the current transaction; returns the new id,
 * and in *json the audit row it made (to be logged once committed).
 */
static int64
ag_store_record(int kind, const char *data, char **json)
{
	Datum		values[AG_MAX_RECORD_FIELDS];
	char		nulls[AG_MAX_RECORD_FIELDS];
	Oid			argtypes[AG_MAX_RECORD_FIELDS];
	int			nfields;
	int			i;
	int			ret;
	bool		isnull;
	Datum		id;

	if (kind < AG_RECORD_REQUEST || kind > AG_RECORD_ALERT)
		elog(ERROR, "unknown agent_guard record kind %d", kind);
	nfields = ag_decode_record(data, values, nulls);

	/* each kind's statement is planned once per writer (the plan cache keeps it valid) */
	if (record_plans[kind] == NULL || record_plan_nargs[kind] != nfields)
	{
		SPIPlanPtr	plan;

		for (i = 0; i < nfields; i++)
			argtypes[i] = TEXTOID;
		plan = SPI_prepare(record_sql[kind], nfields, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		if (record_plans[kind] != NULL)
			SPI_freeplan(record_plans[kind]);
		record_plans[kind] = plan;
		record_plan_nargs[kind] = nfields;
	}
	ret = SPI_execute_plan(record_plans[kind], values, nulls, false, 0);
	if (ret < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("the record was not stored")));
	id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*json = SPI_tuptable->tupdesc->natts >= 2 ?
		SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2) : NULL;
	return isnull ? 0 : DatumGetInt64(id);
}

/*
 * Store every record of a batch in one subtransaction of the current
 * transaction.  Returns false, with nothing stored, if any of them fails.
 */
static bool
ag_store_all(AgTaken *records, int n, int64 *results, char **jsons,
			 MemoryContext batch_context, ResourceOwner batch_owner)
{
	MemoryContext txn_context = CurrentMemoryContext;
	volatile bool stored = false;
	int			i;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(txn_context);
	PG_TRY();
	{
		for (i = 0; i < n; i++)
		{
			char	   *json = NULL;

			results[i] = ag_store_record(records[i].kind, records[i].data, &json);
			jsons[i] = json ? MemoryContextStrdup(batch_context, json) : NULL;
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(txn_context);
		CurrentResourceOwner = batch_owner;
		stored = true;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(txn_context);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(txn_context);
		CurrentResourceOwner = batch_owner;
		for (i = 0; i < n; i++)
		{
			results[i] = 0;
			jsons[i] = NULL;
		}
	}
	PG_END_TRY();
	return stored;
}

/*
 * Store a batch in one transaction, all at once or, if that fails, each
 * record in a subtransaction so one bad record fails alone; acknowledge
 * only after the commit.
 */
static void
ag_writer_store_batch(AgTaken *records, int n)
{
	int64	   *results = palloc0(sizeof(int64) * n);
	char	  **errors = palloc0(sizeof(char *) * n);
	char	  **jsons = palloc0(sizeof(char *) * n);
	MemoryContext batch_context = CurrentMemoryContext;
	ResourceOwner batch_owner;
	int			i;
	bool		committed = false;
	bool		abandoned = false;
	volatile bool holding_interrupts = false;
	int			n_to_store = n;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		batch_owner = CurrentResourceOwner;
		if (!ag_extension_present())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("agent_guard is not installed in this database")));

		/* all at once; record by record (a bad one failing alone) only if that fails */
		if (ag_store_all(records, n, results, jsons, batch_context, batch_owner))
			n_to_store = 0;
		for (i = 0; i < n_to_store; i++)
		{
			MemoryContext txn_context = CurrentMemoryContext;

			BeginInternalSubTransaction(NULL);
			MemoryContextSwitchTo(txn_context);
			PG_TRY();
			{
				char	   *json = NULL;

				results[i] = ag_store_record(records[i].kind, records[i].data, &json);
				if (json)
				{
					MemoryContext old = MemoryContextSwitchTo(batch_context);

					jsons[i] = pstrdup(json);
					MemoryContextSwitchTo(old);
				}
				ReleaseCurrentSubTransaction();
				MemoryContextSwitchTo(txn_context);
				CurrentResourceOwner = batch_owner;
			}
			PG_CATCH();
			{
				ErrorData  *edata;

				MemoryContextSwitchTo(batch_context);
				edata = CopyErrorData();
				FlushErrorState();
				RollbackAndReleaseCurrentSubTransaction();
				MemoryContextSwitchTo(txn_context);
				CurrentResourceOwner = batch_owner;
				errors[i] = edata->message;
			}
			PG_END_TRY();
		}

		/*
		 * Nobody may be told "not stored" of a record we then commit: leave
		 * out records whose backend gave up, or else promise to commit.
		 */
		LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
		for (i = 0; i < n; i++)
			if (records[i].slot >= 0 &&
				ag_shared->slots[records[i].slot].state == AG_SLOT_ABANDONED)
				abandoned = true;
		for (i = 0; i < n && !abandoned; i++)
		{
			AgSlot	   *slot;

			/* what a successor needs to know if we die before answering */
			if (errors[i] != NULL || records[i].slot < 0)
				continue;
			slot = &ag_shared->slots[records[i].slot];
			slot->state = AG_SLOT_COMMITTING;
			slot->result = results[i];
			slot->commit_xid = GetTopTransactionIdIfAny();
		}
		LWLockRelease(ag_shared->lock);
		if (abandoned)
			ereport(ERROR,
					(errmsg_internal("a waiting backend gave up; storing the batch again without its record")));

		/* from the commit to the answer, a SIGTERM waits */
		HOLD_INTERRUPTS();
		holding_interrupts = true;
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();

		/*
		 * Nobody is told "stored" before the commit is on disk, whatever
		 * synchronous_commit says; records nobody waits for need not be.
		 */
		for (i = 0; i < n; i++)
			if (!records[i].async)
			{
				XLogFlush(XactLastCommitEnd);
				break;
			}
		committed = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(batch_context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		if (holding_interrupts)
		{
			RESUME_INTERRUPTS();
			holding_interrupts = false;
		}
		for (i = 0; i < n; i++)
			errors[i] = edata->message;
		if (!abandoned)
			EmitErrorReport();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(batch_context);

	if (abandoned)
	{
		AgTaken    *rest = palloc(sizeof(AgTaken) * n);
		int			nrest = 0;

		/* nothing was stored: free the abandoned slots, store the rest again */
		LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
		for (i = 0; i < n; i++)
		{
			AgSlot	   *slot = records[i].slot >= 0 ? &ag_shared->slots[records[i].slot] : NULL;

			if (slot && slot->state == AG_SLOT_ABANDONED)
			{
				slot->state = AG_SLOT_FREE;
				slot->length = 0;
			}
			else
				rest[nrest++] = records[i];
		}
		LWLockRelease(ag_shared->lock);
		ConditionVariableBroadcast(&ag_shared->done_cv);
		if (nrest > 0)
			ag_writer_store_batch(rest, nrest);
		return;
	}

	/* the server-log line of each stored record, now that it is committed */
	for (i = 0; i < n; i++)
	{
		if (committed && errors[i] == NULL && jsons[i] != NULL)
			ereport(ag_log_level,
					(errmsg_internal("agent_guard: %s", jsons[i]),
					 errhidestmt(true), errhidecontext(true)));
		else if (errors[i] != NULL && records[i].async)
			ereport(LOG,
					(errmsg("agent_guard could not store a record: %s", errors[i])));
	}

	LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		AgSlot	   *slot;

		if (records[i].slot < 0)
			continue;
		slot = &ag_shared->slots[records[i].slot];
		/* nobody waits for these */
		if (slot->state == AG_SLOT_ABANDONED || slot->async)
		{
			slot->state = AG_SLOT_FREE;
			slot->length = 0;
			continue;
		}
		if (committed && errors[i] == NULL)
		{
			slot->result = results[i];
			slot->state = AG_SLOT_DONE;
		}
		else
		{
			snprintf(slot->error, AG_SLOT_ERROR_LEN, "%s", errors[i] ? errors[i] : "not stored");
			slot->state = AG_SLOT_FAILED;
		}
	}
	LWLockRelease(ag_shared->lock);
	ConditionVariableBroadcast(&ag_shared->done_cv);
	/* a consumed one-retry approval is a decision someone may wait for */
	ConditionVariableBroadcast(&ag_shared->decision_cv);
	if (holding_interrupts)
		RESUME_INTERRUPTS();
}

/* Entry point of a writer worker; its argument is the database OID. */
void
ag_writer_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	MemoryContext loop_context;
	AgTaken    *records;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	ag_am_writer = true;
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("agent_guard writer");
	ag_writer_attach(dboid);

	loop_context = AllocSetContextCreate(TopMemoryContext, "agent_guard writer",
										 ALLOCSET_DEFAULT_SIZES);
	records = MemoryContextAlloc(TopMemoryContext, sizeof(AgTaken) * ag_shared->nslots);

	for (;;)
	{
		int			n = 0;
		int			i;
		int			rc;
		bool		freed_slots = false;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
		for (i = 0; i < ag_shared->nslots; i++)
		{
			AgSlot	   *slot = &ag_shared->slots[i];
			AgTaken    *record;

			if (slot->state != AG_SLOT_QUEUED || slot->dboid != dboid)
				continue;
			record = &records[n++];
			record->kind = slot->kind;
			record->async = slot->async;
			if (slot->async)
			{
				char	   *copy = MemoryContextAlloc(loop_context, slot->length);

				memcpy(copy, ag_arena() + slot->offset, slot->length);
				record->data = copy;
				record->slot = -1;
				slot->state = AG_SLOT_FREE;
				slot->length = 0;
				freed_slots = true;
			}
			else
			{
				record->data = ag_arena() + slot->offset;
				record->slot = i;
				slot->state = AG_SLOT_TAKEN;
			}
		}
		LWLockRelease(ag_shared->lock);
		if (freed_slots)
			ConditionVariableBroadcast(&ag_shared->done_cv);

		if (n > 0)
		{
			MemoryContext old = MemoryContextSwitchTo(loop_context);

			pgstat_report_activity(STATE_RUNNING, "storing agent_guard records");
			ag_writer_store_batch(records, n);
			pgstat_report_activity(STATE_IDLE, NULL);
			MemoryContextSwitchTo(old);
			MemoryContextReset(loop_context);
			continue;
		}

		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   AG_WRITER_IDLE_MS, PG_WAIT_EXTENSION);
		if (rc & WL_TIMEOUT)
		{
			bool		idle = true;

			/* leave when nothing is queued; whoever queues next starts a writer */
			LWLockAcquire(ag_shared->lock, LW_EXCLUSIVE);
			for (i = 0; i < ag_shared->nslots && idle; i++)
				if (ag_shared->slots[i].dboid == dboid &&
					ag_shared->slots[i].state == AG_SLOT_QUEUED)
					idle = false;
			if (idle)
			{
				my_writer->dboid = InvalidOid;
				my_writer->pid = 0;
				my_writer->latch = NULL;
			}
			LWLockRelease(ag_shared->lock);
			if (idle)
				proc_exit(0);
		}
	}
}
