/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every PostgreSQL major-version difference agent_guard depends on.
 *
 * Supported: PostgreSQL 15 to 18.  No other file tests PG_VERSION_NUM.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENT_GUARD_COMPAT_H
#define AGENT_GUARD_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "agent_guard requires PostgreSQL 15 or later"
#endif

/* 18 lets a module describe itself in its magic block. */
#if PG_VERSION_NUM >= 180000
#define AG_MODULE_MAGIC PG_MODULE_MAGIC_EXT(.name = "agent_guard", .version = "1.0")
#else
#define AG_MODULE_MAGIC PG_MODULE_MAGIC
#endif

/* 18 dropped ExecutorRun's execute_once argument. */
#if PG_VERSION_NUM >= 180000
#define AG_EXECUTOR_RUN_PARAMS QueryDesc *queryDesc, ScanDirection direction, uint64 count
#define AG_EXECUTOR_RUN_ARGS queryDesc, direction, count
#else
#define AG_EXECUTOR_RUN_PARAMS QueryDesc *queryDesc, ScanDirection direction, uint64 count, \
	bool execute_once
#define AG_EXECUTOR_RUN_ARGS queryDesc, direction, count, execute_once
#endif

/* 18 replaced Append's run-time pruning info by an index into the plan's list. */
#if PG_VERSION_NUM >= 180000
#define ag_append_prunes(append) ((append)->part_prune_index >= 0)
#else
#define ag_append_prunes(append) ((append)->part_prune_info != NULL)
#endif

/* 16 made ownership checks generic over catalogs. */
#if PG_VERSION_NUM >= 160000
#define ag_table_ownercheck(relid, roleid) object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define ag_table_ownercheck(relid, roleid) pg_class_ownercheck((relid), (roleid))
#endif

/* 17 replaced PGPROC.pgprocno by the process number of the backend. */
#if PG_VERSION_NUM >= 170000
#define AG_MY_PROC_NUMBER MyProcNumber
#else
#define AG_MY_PROC_NUMBER (MyProc->pgprocno)
#endif

#endif							/* AGENT_GUARD_COMPAT_H */
