/*-------------------------------------------------------------------------
 *
 * trash.c
 *	  The recycle bin: under action "trash", an agent's DROP TABLE moves the
 *	  table into schema agent_guard under a new name instead of dropping it;
 *	  restore_dropped() puts it back, purge_trash() drops for real.
 *
 * Moving keeps the table whole: data, indexes, constraints, owned
 * sequences, triggers and grants go with it.  Views and foreign keys that
 * refer to it keep referring to it (by OID) while it is in the bin.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(ag_restore_dropped);
PG_FUNCTION_INFO_V1(ag_purge_trash);

/* Run one statement of ours, unjudged, as the extension owner. */
static void
ag_trash_sql(const char *sql, int nargs, Oid *argtypes, Datum *values, int expected)
{
	Oid			save_userid;
	int			save_sec_context;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	ag_nesting++;
	PG_TRY();
	{
		int			ret;

		SetUserIdAndSecContext(ag_extension_owner(),
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		ret = SPI_execute_with_args(sql, nargs, argtypes, values, NULL, false, 0);
		if (ret != expected)
			elog(ERROR, "agent_guard recycle bin statement failed: %s", SPI_result_code_string(ret));
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_FINALLY();
	{
		ag_nesting--;
	}
	PG_END_TRY();
}

/*
 * Can the bin take these tables?  Not a table in a partition or
 * inheritance tree: moved alone it would still be reached, and changed,
 * through its parent, or leave its partitions behind.
 */
bool
ag_trashable(DropStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		Oid			relid = RangeVarGetRelid(makeRangeVarFromNameList((List *) lfirst(lc)),
											 NoLock, true);

		if (OidIsValid(relid) &&
			(get_rel_relispartition(relid) || has_superclass(relid) || has_subclass(relid) ||
			 get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE))
			return false;
	}
	return true;
}

/*
 * Move the tables of a DROP TABLE into the bin.  The agent needs what DROP
 * needs: ownership of each table.
 */
int
ag_trash_tables(DropStmt *stmt, const char *statement, const char *agent)
{
	ListCell   *lc;
	int			moved = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, stmt->objects)
	{
		RangeVar   *rv = makeRangeVarFromNameList((List *) lfirst(lc));
		Oid			relid = RangeVarGetRelid(rv, AccessExclusiveLock, stmt->missing_ok);
		char		relkind;
		char	   *schema;
		char	   *name;
		char	   *trashed;
		int64		id;
		bool		isnull;
		Oid			argtypes[6] = {INT8OID, NAMEOID, NAMEOID, NAMEOID, TEXTOID, TEXTOID};
		Datum		values[6];

		if (!OidIsValid(relid))
		{
			ereport(NOTICE,
					(errmsg("table \"%s\" does not exist, skipping", rv->relname)));
			continue;
		}
		relkind = get_rel_relkind(relid);
		if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a table", rv->relname)));
		if (!ag_table_ownercheck(relid, GetUserId()))
			aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));

		schema = get_namespace_name(get_rel_namespace(relid));
		name = get_rel_name(relid);
		ag_trash_sql("SELECT pg_catalog.nextval('agent_guard.trash_id_seq')", 0, NULL, NULL,
					 SPI_OK_SELECT);
		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		trashed = psprintf("trash_%lld_%s", (long long) id, name);
		if (strlen(trashed) >= NAMEDATALEN)
			trashed[NAMEDATALEN - 1] = '\0';

		ag_trash_sql(psprintf("ALTER TABLE %s.%s RENAME TO %s", quote_identifier(schema),
							  quote_identifier(name), quote_identifier(trashed)),
					 0, NULL, NULL, SPI_OK_UTILITY);
		ag_trash_sql(psprintf("ALTER TABLE %s.%s SET SCHEMA agent_guard", quote_identifier(schema),
							  quote_identifier(trashed)),
					 0, NULL, NULL, SPI_OK_UTILITY);

		values[0] = Int64GetDatum(id);
		values[1] = DirectFunctionCall1(namein, CStringGetDatum(schema));
		values[2] = DirectFunctionCall1(namein, CStringGetDatum(name));
		values[3] = DirectFunctionCall1(namein, CStringGetDatum(trashed));
		values[4] = CStringGetTextDatum(agent);
		values[5] = CStringGetTextDatum(statement ? statement : "");
		ag_trash_sql("INSERT INTO agent_guard.trash (id, original_schema, original_name,"
					 " trashed_name, dropped_by, agent, statement)"
					 " VALUES ($1, $2, $3, $4, session_user, $5, $6)",
					 6, argtypes, values, SPI_OK_INSERT);
		moved++;
	}
	SPI_finish();
	return moved;
}

/* restore_dropped(trash_id bigint) RETURNS regclass */
Datum
ag_restore_dropped(PG_FUNCTION_ARGS)
{
	int64		id;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	char	   *schema;
	char	   *name;
	char	   *trashed;
	char	   *restored;
	MemoryContext caller = CurrentMemoryContext;

	ag_require_not_agent("agent_guard.restore_dropped()");
	ag_require_argument(fcinfo, 0, "trash_id");
	id = PG_GETARG_INT64(0);
	values[0] = Int64GetDatum(id);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT original_schema, original_name, trashed_name"
							  " FROM agent_guard.trash WHERE id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read agent_guard.trash");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("recycle bin entry %lld does not exist", (long long) id)));
	schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	trashed = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);

	if (!OidIsValid(get_namespace_oid(schema, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" of the dropped table no longer exists", schema),
				 errhint("Create the schema again, then restore.")));
	if (OidIsValid(get_relname_relid(name, get_namespace_oid(schema, false))))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s.%s\" already exists", schema, name),
				 errhint("Rename or drop the table that took its name, then restore again.")));

	if (SPI_execute(psprintf("ALTER TABLE agent_guard.%s SET SCHEMA %s", quote_identifier(trashed),
							 quote_identifier(schema)), false, 0) != SPI_OK_UTILITY ||
		SPI_execute(psprintf("ALTER TABLE %s.%s RENAME TO %s", quote_identifier(schema),
							 quote_identifier(trashed), quote_identifier(name)),
					false, 0) != SPI_OK_UTILITY ||
		SPI_execute_with_args("DELETE FROM agent_guard.trash WHERE id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not restore the table");
	/* what SPI allocated goes with SPI_finish() */
	restored = MemoryContextStrdup(caller, psprintf("%s.%s", quote_identifier(schema),
													 quote_identifier(name)));
	schema = MemoryContextStrdup(caller, schema);
	name = MemoryContextStrdup(caller, name);
	SPI_finish();

	ag_log_change("RESTORE DROPPED", psprintf("%s.%s", schema, name),
				  psprintf("recycle bin entry %lld", (long long) id), 0);
	PG_RETURN_TEXT_P(cstring_to_text(restored));
}

/* purge_trash(older_than interval) RETURNS bigint: tables dropped for real */
Datum
ag_purge_trash(PG_FUNCTION_ARGS)
{
	Oid			argtypes[1] = {INTERVALOID};
	Datum		values[1];
	List	   *drops = NIL;
	ListCell   *lc;
	uint64		i;
	int64		purged = 0;

	ag_require_not_agent("agent_guard.purge_trash()");
	values[0] = PointerGetDatum(ag_interval_argument(fcinfo, 0, "older_than"));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("DELETE FROM agent_guard.trash"
							  " WHERE dropped_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $1)"
							  " RETURNING trashed_name",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "could not read agent_guard.trash");
	for (i = 0; i < SPI_processed; i++)
		drops = lappend(drops, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	foreach(lc, drops)
	{
		if (SPI_execute(psprintf("DROP TABLE IF EXISTS agent_guard.%s",
								 quote_identifier(lfirst(lc))), false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not drop a table of the recycle bin");
		purged++;
	}
	SPI_finish();

	ag_log_change("PURGE TRASH", "agent_guard.trash",
				  psprintf("dropped %lld tables", (long long) purged), 0);
	PG_RETURN_INT64(purged);
}
