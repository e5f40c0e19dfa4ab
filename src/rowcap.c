/*-------------------------------------------------------------------------
 *
 * rowcap.c
 *	  Row caps: an agent's UPDATE, DELETE, MERGE or INSERT that changes more
 *	  rows than its policy's max_rows is rolled back (or parked).
 *
 * Rows are counted per result relation (partitions and inheritance
 * children included, data-modifying CTEs too) from the transaction-level
 * counters the statistics system keeps for each table, before and after
 * the statement.  Rows changed elsewhere by the statement's side effects
 * (ON DELETE CASCADE, triggers writing other tables) are judged as
 * statements of their own.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "parser/parsetree.h"
#include "pgstat.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

typedef struct AgCapCheck
{
	QueryDesc  *queryDesc;
	int			nest_level;
	AgCap		cap;
	AgStatement stmt;
	List	   *relids;
	int64		before;
} AgCapCheck;

/* Armed checks of statements still running, innermost last. */
static List *cap_checks = NIL;
static bool callbacks_registered = false;

static void
ag_rowcap_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		cap_checks = NIL;		/* lived in TopTransactionContext */
}

static void
ag_rowcap_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, cap_checks)
	{
		AgCapCheck *check = lfirst(lc);

		if (check->nest_level >= GetCurrentTransactionNestLevel())
			cap_checks = foreach_delete_current(cap_checks, lc);
	}
}

/* Rows inserted, updated and deleted in a table by this transaction so far. */
static int64
ag_rows_changed(Oid relid, bool *counted)
{
	PgStat_TableStatus *table = find_tabstat_entry(relid);
	PgStat_TableXactStatus *trans;
	int64		rows = 0;

	if (table == NULL)
		return 0;
	*counted = true;
	for (trans = table->trans; trans != NULL; trans = trans->upper)
		rows += trans->tuples_inserted + trans->tuples_updated + trans->tuples_deleted;
	return rows;
}

static int64
ag_rows_changed_all(List *relids, bool *counted)
{
	ListCell   *lc;
	int64		rows = 0;

	foreach(lc, relids)
		rows += ag_rows_changed(lfirst_oid(lc), counted);
	return rows;
}

/* Every relation the statement may write: result relations and their children. */
static List *
ag_result_relids(PlannedStmt *pstmt)
{
	List	   *relids = NIL;
	ListCell   *lc;

	foreach(lc, pstmt->resultRelations)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), pstmt->rtable);

		relids = list_append_unique_oid(relids, rte->relid);
		if (get_rel_relkind(rte->relid) == RELKIND_PARTITIONED_TABLE ||
			has_subclass(rte->relid))
			relids = list_concat_unique_oid(relids, find_all_inheritors(rte->relid, NoLock, NULL));
	}
	return relids;
}

/* After ExecutorStart: remember where the counters stand. */
void
ag_rowcap_arm(QueryDesc *queryDesc, const AgStatement *stmt, const AgCap *cap)
{
	MemoryContext old;
	AgCapCheck *check;
	bool		counted = false;

	if (!callbacks_registered)
	{
		RegisterXactCallback(ag_rowcap_xact_callback, NULL);
		RegisterSubXactCallback(ag_rowcap_subxact_callback, NULL);
		callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	check = palloc0(sizeof(AgCapCheck));
	check->queryDesc = queryDesc;
	check->nest_level = GetCurrentTransactionNestLevel();
	check->cap = *cap;
	check->cap.command = pstrdup(cap->command);
	check->cap.object = pstrdup(cap->object);
	check->cap.agent = pstrdup(cap->agent);
	check->cap.decision.reason = pstrdup(cap->decision.reason);
	check->cap.decision.pattern = cap->decision.pattern ? pstrdup(cap->decision.pattern) : NULL;
	check->cap.decision.policy_command = cap->decision.policy_command ?
		pstrdup(cap->decision.policy_command) : NULL;
	check->stmt = *stmt;
	check->stmt.text = pstrdup(stmt->text);
	check->stmt.toplevel = pstrdup(stmt->toplevel);
	check->stmt.pairs = NIL;	/* rebuilt from command and object if parked */
	check->relids = ag_result_relids(queryDesc->plannedstmt);
	check->before = ag_rows_changed_all(check->relids, &counted);
	cap_checks = lappend(cap_checks, check);
	MemoryContextSwitchTo(old);
}

/*
 * After ExecutorFinish (AFTER triggers have run): refuse the statement if
 * it changed more rows than its cap; the error rolls it back.
 */
void
ag_rowcap_check(QueryDesc *queryDesc)
{
	ListCell   *lc;
	AgCapCheck *check = NULL;
	bool		counted = false;
	int64		rows;

	foreach(lc, cap_checks)
	{
		if (((AgCapCheck *) lfirst(lc))->queryDesc == queryDesc)
		{
			check = lfirst(lc);
			cap_checks = foreach_delete_current(cap_checks, lc);
			break;
		}
	}
	if (check == NULL)
		return;

	rows = ag_rows_changed_all(check->relids, &counted) - check->before;
	/* without table statistics (track_counts off), the statement's own count */
	if (!counted && queryDesc->estate)
		rows = (int64) queryDesc->estate->es_processed;
	if (rows <= check->cap.decision.max_rows)
		return;
	ag_rowcap_exceeded(&check->stmt, &check->cap, rows);
}
