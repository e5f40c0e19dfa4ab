/*-------------------------------------------------------------------------
 *
 * agent_guard.c
 *	  Module entry point: settings and hook installation.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

AG_MODULE_MAGIC;

void		_PG_init(void);

bool		ag_enabled = true;
int			ag_approval_ttl = 86400;
int			ag_retry_window = 600;
int			ag_write_timeout = 5000;
int			ag_breaker_threshold = 20;
int			ag_breaker_window = 60;
int			ag_log_statement = AG_LOG_STATEMENT_ON;
bool		ag_audit_reads = false;
int			ag_log_level = LOG;
int			ag_queue_size = 1024;

ProcessUtility_hook_type ag_prev_ProcessUtility = NULL;
ExecutorStart_hook_type ag_prev_ExecutorStart = NULL;
ExecutorRun_hook_type ag_prev_ExecutorRun = NULL;
ExecutorFinish_hook_type ag_prev_ExecutorFinish = NULL;
planner_hook_type ag_prev_planner = NULL;

static const struct config_enum_entry log_statement_options[] = {
	{"on", AG_LOG_STATEMENT_ON, false},
	{"off", AG_LOG_STATEMENT_OFF, false},
	{"redacted", AG_LOG_STATEMENT_REDACTED, false},
	{NULL, 0, false}
};

static const struct config_enum_entry log_level_options[] = {
	{"debug", DEBUG2, true},
	{"debug1", DEBUG1, false},
	{"info", INFO, false},
	{"notice", NOTICE, false},
	{"warning", WARNING, false},
	{"log", LOG, false},
	{NULL, 0, false}
};

static void ag_define_settings(void);

/*
 * Load-time setup.  The guard must see every backend from its first
 * statement, so only shared_preload_libraries is accepted.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("agent_guard must be loaded via shared_preload_libraries"),
				 errhint("Add agent_guard to shared_preload_libraries in postgresql.conf and restart the server.")));

	ag_define_settings();

	if (IsBinaryUpgrade)
		return;

	ag_shmem_init();
	ag_agents_init();
	ag_policy_init();
	ag_guard_init();

	ag_prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = ag_ProcessUtility;
	ag_prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = ag_ExecutorStart;
	ag_prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = ag_ExecutorRun;
	ag_prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = ag_ExecutorFinish;
	ag_prev_planner = planner_hook;
	planner_hook = ag_planner;
}

static void
ag_define_settings(void)
{
	DefineCustomBoolVariable("agent_guard.enabled",
							 "Applies agent_guard decisions to agent sessions.",
							 NULL, &ag_enabled, true,
							 PGC_SIGHUP, 0,
							 ag_check_bool_setting, NULL, NULL);
	DefineCustomIntVariable("agent_guard.approval_ttl",
							"Time a parked request may wait for approval.",
							NULL, &ag_approval_ttl, 86400, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S | GUC_NO_RESET_ALL,
							ag_check_int_setting, NULL, NULL);
	DefineCustomIntVariable("agent_guard.retry_window",
							"Time an agent has to retry a statement approved for one retry.",
							NULL, &ag_retry_window, 600, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S | GUC_NO_RESET_ALL,
							ag_check_int_setting, NULL, NULL);
	DefineCustomIntVariable("agent_guard.write_timeout",
							"Time to wait for a refusal record to be stored before refusing without it.",
							NULL, &ag_write_timeout, 5000, 1, 600000,
							PGC_SUSET, GUC_UNIT_MS | GUC_NO_RESET_ALL,
							ag_check_int_setting, NULL, NULL);
	DefineCustomIntVariable("agent_guard.breaker_threshold",
							"Number of refusals within breaker_window that trips an agent's circuit breaker.",
							NULL, &ag_breaker_threshold, 20, 1, INT_MAX,
							PGC_SUSET, GUC_NO_RESET_ALL,
							ag_check_int_setting, NULL, NULL);
	DefineCustomIntVariable("agent_guard.breaker_window",
							"Time window over which refusals are counted for the circuit breaker.",
							NULL, &ag_breaker_window, 60, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S | GUC_NO_RESET_ALL,
							ag_check_int_setting, NULL, NULL);
	DefineCustomEnumVariable("agent_guard.log_statement",
							 "How statement text appears in agent_guard records: on, off or redacted.",
							 NULL, &ag_log_statement, AG_LOG_STATEMENT_ON,
							 log_statement_options,
							 PGC_SUSET, GUC_NO_RESET_ALL,
							 ag_check_enum_setting, NULL, NULL);
	DefineCustomBoolVariable("agent_guard.audit_reads",
							 "Records allowed reads by agents as well as changes.",
							 NULL, &ag_audit_reads, false,
							 PGC_SUSET, GUC_NO_RESET_ALL,
							 ag_check_bool_setting, NULL, NULL);
	DefineCustomEnumVariable("agent_guard.log_level",
							 "Server-log level of agent_guard's JSON decision lines.",
							 NULL, &ag_log_level, LOG, log_level_options,
							 PGC_SUSET, GUC_NO_RESET_ALL,
							 ag_check_enum_setting, NULL, NULL);

	DefineCustomIntVariable("agent_guard.queue_size",
							"Shared memory for records waiting to be stored by the writer.",
							NULL, &ag_queue_size, 1024, 64, 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_KB,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("agent_guard");
}
