/*-------------------------------------------------------------------------
 *
 * agent_guard.h
 *	  Internal interfaces shared by the files of agent_guard, one section
 *	  per file.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENT_GUARD_H
#define AGENT_GUARD_H

#include "compat.h"

#include "datatype/timestamp.h"
#include "executor/executor.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "optimizer/planner.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/utility.h"
#include "utils/guc.h"

/* SQLSTATEs of our own (class AG); 42501 is used for plain denials. */
#define AG_ERRCODE_APPROVAL_REQUIRED	MAKE_SQLSTATE('A','G','0','0','1')
#define AG_ERRCODE_ROW_CAP				MAKE_SQLSTATE('A','G','0','0','2')
#define AG_ERRCODE_BREAKER				MAKE_SQLSTATE('A','G','0','0','3')
#define AG_ERRCODE_FROZEN				MAKE_SQLSTATE('A','G','0','0','4')

/* ---------- agent_guard.c: settings ---------- */

typedef enum AgLogStatement
{
	AG_LOG_STATEMENT_OFF,
	AG_LOG_STATEMENT_ON,
	AG_LOG_STATEMENT_REDACTED
} AgLogStatement;

extern bool ag_enabled;
extern int	ag_approval_ttl;
extern int	ag_retry_window;
extern int	ag_write_timeout;
extern int	ag_breaker_threshold;
extern int	ag_breaker_window;
extern int	ag_log_statement;
extern bool ag_audit_reads;
extern int	ag_log_level;
extern int	ag_queue_size;

extern ProcessUtility_hook_type ag_prev_ProcessUtility;
extern ExecutorStart_hook_type ag_prev_ExecutorStart;
extern ExecutorRun_hook_type ag_prev_ExecutorRun;
extern ExecutorFinish_hook_type ag_prev_ExecutorFinish;
extern planner_hook_type ag_prev_planner;

/* ---------- commands.c: command vocabulary and groups ---------- */

/* Command groups usable in policies, as bits. */
#define AG_GROUP_READ			0x01
#define AG_GROUP_WRITE			0x02
#define AG_GROUP_DDL			0x04
#define AG_GROUP_DESTRUCTIVE	0x08
#define AG_GROUP_ADMIN			0x10
#define AG_GROUP_ALL			0x20	/* every command */

/* Commands that are neither reads nor changes and are never logged. */
#define AG_GROUP_SESSION		0x40

extern int	ag_command_groups(const char *command);
extern int	ag_group_by_name(const char *name);
extern const char *ag_canonical_command(const char *name);
extern bool ag_command_counts_rows(const char *command);
extern bool ag_command_changes_rows(const char *command);
extern const char *ag_valid_commands_hint(void);

/* ---------- classify.c: statements to (command, object) pairs ---------- */

typedef struct AgPair
{
	const char *command;		/* canonical command name */
	char	   *object;			/* schema-qualified object name */
	Oid			relid;			/* relation OID when object is a relation */
	Oid			funcid;			/* function OID for EXECUTE pairs */
} AgPair;

/* The object of a set_config() whose setting name is known only as it runs. */
#define AG_COMPUTED_SETTING "(computed setting name)"

/* The channels agent_guard notifies on (agent_guard_pending, agent_guard_alert). */
#define AG_CHANNEL_PREFIX "agent_guard"

extern List *ag_classify_utility(Node *parsetree);
extern List *ag_classify_plan(PlannedStmt *pstmt, ParamListInfo params);
extern List *ag_classify_query_functions(Query *query, ParamListInfo params);
extern List *ag_add_pair(List *pairs, const char *command, char *object, Oid relid);

/* ---------- agents.c: who is an agent ---------- */

typedef enum AgMode
{
	AG_MODE_NONE = 0,			/* not guarded */
	AG_MODE_MONITOR,
	AG_MODE_ENFORCE
} AgMode;

extern void ag_agents_init(void);
extern AgMode ag_session_mode(void);
extern bool ag_session_guarded_by(Oid agent);
extern Oid	ag_session_agent(void);
extern bool ag_role_is_agent(Oid roleid);
extern AgMode ag_role_mode(Oid roleid);
extern AgMode ag_parse_mode(const char *mode);
extern void ag_set_agent_label(Oid roleid, const char *mode, bool frozen);
extern bool ag_session_frozen(void);
extern bool ag_role_frozen(Oid roleid);
extern bool ag_caller_is_agent(void);
extern const Oid *ag_session_agents(int *n_agents);
extern Oid *ag_agents_of_role(Oid roleid, int *n_agents);
extern void ag_set_replay_agent(Oid agent);

/* ---------- policy.c: policy cache, matching and precedence ---------- */

typedef enum AgAction
{
	AG_ACTION_ALLOW = 0,		/* ordered by restrictiveness */
	AG_ACTION_TRASH,
	AG_ACTION_REQUIRE_APPROVAL,
	AG_ACTION_DENY
} AgAction;

typedef struct AgDecision
{
	AgAction	action;
	bool		over_cap_needs_approval;	/* allowed up to max_rows, parked above */
	int64		policy_id;		/* 0 when no policy or a built-in rule */
	const char *pattern;		/* the policy's object_pattern */
	const char *policy_command; /* the policy's command */
	int64		max_rows;		/* -1 when unlimited */
	int			approvals_required;
	bool		builtin;		/* decided by a protection no policy lifts */
	bool		caps_rows;		/* max_rows applies to this command */
	const char *reason;			/* NULL until ag_explain_decision() */
} AgDecision;

extern void ag_policy_init(void);
extern bool ag_extension_present(void);
extern Oid	ag_extension_owner(void);
extern Oid	ag_schema_oid(void);
extern void ag_policy_decide(const AgPair *pair, const Oid *agents, int n_agents,
							 AgDecision *decision);
extern void ag_explain_decision(AgDecision *decision);
extern AgAction ag_parse_action(const char *action);
extern const char *ag_action_name(AgAction action);
extern bool ag_has_execute_policies(void);
extern bool ag_glob_match(const char *pattern, const char *text);
extern void ag_invalidate_policies(void);

/* ---------- guard.c: the hooks and the decision they apply ---------- */

extern int	ag_nesting;			/* >0 while agent_guard runs its own SQL */
extern int	ag_depth;			/* statement nesting: 0 at top level */

extern void ag_guard_init(void);
extern void ag_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							  bool readOnlyTree, ProcessUtilityContext context,
							  ParamListInfo params, QueryEnvironment *queryEnv,
							  DestReceiver *dest, QueryCompletion *qc);
extern void ag_ExecutorStart(QueryDesc *queryDesc, int eflags);
extern void ag_ExecutorRun(AG_EXECUTOR_RUN_PARAMS);
extern void ag_ExecutorFinish(QueryDesc *queryDesc);
extern PlannedStmt *ag_planner(Query *parse, const char *query_string,
							   int cursorOptions, ParamListInfo boundParams);
extern bool ag_check_bool_setting(bool *newval, void **extra, GucSource source);
extern bool ag_check_int_setting(int *newval, void **extra, GucSource source);
extern bool ag_check_enum_setting(int *newval, void **extra, GucSource source);
extern void ag_decide_pair(const AgPair *pair, const Oid *agents, int n_agents,
						   AgDecision *decision);

/* ---------- shmem.c: the write queue in shared memory ---------- */

typedef enum AgSlotState
{
	AG_SLOT_FREE = 0,
	AG_SLOT_QUEUED,				/* waiting for the writer */
	AG_SLOT_TAKEN,				/* the writer is storing it */
	AG_SLOT_COMMITTING,			/* stored; the writer is committing */
	AG_SLOT_DONE,				/* committed; result holds the new id */
	AG_SLOT_FAILED,				/* not stored; error says why */
	AG_SLOT_ABANDONED			/* the backend stopped waiting */
} AgSlotState;

#define AG_SLOT_ERROR_LEN 256
#define AG_MAX_WRITERS 32

typedef struct AgSlot
{
	AgSlotState state;
	Oid			dboid;
	int			kind;
	bool		async;			/* nobody waits: the writer frees the slot */
	Size		offset;			/* record bytes in the arena */
	Size		length;
	int64		result;
	TransactionId commit_xid;	/* the writer's transaction, once COMMITTING */
	char		error[AG_SLOT_ERROR_LEN];
} AgSlot;

/* One writer worker per database that has needed one. */
typedef struct AgWriter
{
	Oid			dboid;
	pid_t		pid;
	Latch	   *latch;
	bool		starting;
	TimestampTz start_requested;
} AgWriter;

#define AG_MAX_BREAKERS 64

/* Circuit-breaker state of one agent. */
typedef struct AgBreaker
{
	Oid			agent;
	TimestampTz window_start;
	int			previous;		/* refusals in the window before */
	int			current;		/* refusals in this window */
	bool		tripped;
	TimestampTz tripped_at;
} AgBreaker;

typedef struct AgShared
{
	LWLock	   *lock;
	ConditionVariable done_cv;	/* a slot finished or was freed */
	ConditionVariable decision_cv;	/* a request was decided */
	int			nslots;
	Size		arena_size;
	AgWriter	writers[AG_MAX_WRITERS];
	AgBreaker	breakers[AG_MAX_BREAKERS];
	AgSlot		slots[FLEXIBLE_ARRAY_MEMBER];
	/* the arena follows */
} AgShared;

extern AgShared *ag_shared;

extern void ag_shmem_init(void);
extern char *ag_arena(void);
extern bool ag_arena_alloc(Size length, Size *offset);

/* ---------- writer.c: durable writes through the writer worker ---------- */

typedef enum AgRecordKind
{
	AG_RECORD_REQUEST = 1,		/* a parked statement */
	AG_RECORD_AUDIT,			/* an audit record */
	AG_RECORD_CLAIM_RETRY,		/* consume a one-retry approval */
	AG_RECORD_ALERT				/* an audit record, sent on agent_guard_alert too */
} AgRecordKind;

#define AG_MAX_RECORD_FIELDS 24

extern bool ag_write_record(AgRecordKind kind, const char *const *fields,
							int nfields, int64 *result, char **error);
extern bool ag_send_record(AgRecordKind kind, const char *const *fields,
						   int nfields, char **error);
extern PGDLLEXPORT void ag_writer_main(Datum main_arg);
extern bool ag_am_writer;

/* ---------- queue.c: parking, approval, rejection, replay ---------- */

/* What the guard knows about the statement it is judging. */
typedef struct AgStatement
{
	const char *text;			/* the statement judged */
	const char *toplevel;		/* the statement the client sent */
	ParamListInfo params;		/* its parameters (extended protocol) */
	bool		nested;			/* judged inside a function, rule or trigger */
	bool		needs_own_transaction;	/* cannot run inside a transaction block */
	double		estimated_rows; /* planner's estimate of rows changed, -1 unknown */
	List	   *pairs;
} AgStatement;

extern bool ag_park(const AgStatement *stmt, const AgPair *pair,
					const AgDecision *decision, const char *agent,
					int64 *request_id, char **error);
extern bool ag_claim_retry(const AgStatement *stmt, int64 *request_id);
extern bool ag_replay_covers(const AgStatement *stmt, int depth, int64 *request_id);
extern bool ag_replay_active(int64 *request_id);
extern bool ag_needs_own_transaction(Node *parsetree);
extern char *ag_text_array_literal(List *strings);

/* ---------- sqlfuncs.c: SQL-callable administration ---------- */

extern void ag_require_not_agent(const char *function);
extern void ag_require_argument(FunctionCallInfo fcinfo, int argno, const char *name);
extern Interval *ag_interval_argument(FunctionCallInfo fcinfo, int argno,
									  const char *name);
extern char *ag_role_name(Oid roleid);
extern Oid	ag_registered_agent_argument(FunctionCallInfo fcinfo);
extern void ag_log_change(const char *command, const char *object, const char *reason,
						  int64 policy_id);

/* ---------- rowcap.c: row caps ---------- */

/* The cap a statement runs under, from its policy. */
typedef struct AgCap
{
	bool		active;
	const char *command;		/* the pair the cap comes from */
	const char *object;
	Oid			relid;
	const char *agent;
	AgDecision	decision;		/* max_rows, policy, and what to do above it */
	bool		enforced;		/* false in monitor mode */
} AgCap;

extern void ag_rowcap_arm(QueryDesc *queryDesc, const AgStatement *stmt, const AgCap *cap);
extern void ag_rowcap_check(QueryDesc *queryDesc);
extern void ag_rowcap_exceeded(const AgStatement *stmt, const AgCap *cap, int64 rows);

/* ---------- breaker.c: circuit breaker and kill switch ---------- */

extern bool ag_breaker_note_refusal(Oid agent);
extern bool ag_breaker_tripped(Oid agent);
extern Oid	ag_session_breaker_tripped(void);
extern void ag_alert(const char *command, const char *decision, Oid agent,
					 const char *reason, bool at_commit);

/* ---------- trash.c: the recycle bin ---------- */

extern bool ag_trashable(DropStmt *stmt);
extern int	ag_trash_tables(DropStmt *stmt, const char *statement, const char *agent);

/* ---------- log_json.c: the structured server-log line ---------- */

typedef struct AgEvent
{
	const char *command;
	List	   *objects;		/* of char * */
	const char *statement;
	const char *decision;
	int64		policy_id;
	const char *reason;
	int64		rows;			/* -1 when not applicable */
	int64		request_id;		/* 0 when none */
	const char *actor;
	const char *agent;
	const char *session_user;	/* NULL: this session's */
	const char *current_user;	/* NULL: this session's */
	int64		seq;			/* audit_log row, 0 when not stored */
	bool		alert;			/* also NOTIFY agent_guard_alert */
} AgEvent;

extern void ag_log_event(const AgEvent *event);
extern const char *ag_logged_statement(const char *statement);
extern char *ag_redact_statement(const char *statement);
extern char *ag_prepared_query(const char *statement);

/* ---------- audit.c: audit records ---------- */

extern bool ag_store_audit(const AgEvent *event, int64 *seq, char **error);
extern void ag_record_event(AgEvent *event, bool durable);
extern void ag_record_at_commit(const AgEvent *event);

#endif							/* AGENT_GUARD_H */
