/*-------------------------------------------------------------------------
 *
 * commands.c
 *	  The command vocabulary of policies: PostgreSQL command tags, the
 *	  refined commands that name a hidden danger, and the command groups.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "tcop/cmdtag.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

/*
 * Refined commands: a PostgreSQL tag made more precise where the tag hides
 * the danger.  Each is a command of its own; its groups are listed here and
 * are not inherited from the tag it refines.
 */
typedef struct AgRefinedCommand
{
	const char *name;
	int			groups;
} AgRefinedCommand;

static const AgRefinedCommand refined_commands[] = {
	{"DELETE WITHOUT WHERE", AG_GROUP_WRITE | AG_GROUP_DESTRUCTIVE},
	{"UPDATE WITHOUT WHERE", AG_GROUP_WRITE | AG_GROUP_DESTRUCTIVE},
	{"ALTER TABLE DROP COLUMN", AG_GROUP_DDL | AG_GROUP_DESTRUCTIVE},
	{"ALTER TABLE ALTER COLUMN TYPE", AG_GROUP_DDL | AG_GROUP_DESTRUCTIVE},
	{"ALTER TABLE DETACH PARTITION", AG_GROUP_DDL | AG_GROUP_DESTRUCTIVE},
	{"COPY FROM", AG_GROUP_WRITE},
	{"COPY TO PROGRAM", AG_GROUP_ADMIN},
	{"COPY FROM PROGRAM", AG_GROUP_WRITE | AG_GROUP_ADMIN},
	/* writing a server file can rewrite the server's configuration or data */
	{"COPY TO FILE", AG_GROUP_ADMIN},
	{"CREATE OR REPLACE FUNCTION", AG_GROUP_DDL | AG_GROUP_DESTRUCTIVE},
	{"CREATE OR REPLACE PROCEDURE", AG_GROUP_DDL | AG_GROUP_DESTRUCTIVE},
	{"CREATE OR REPLACE VIEW", AG_GROUP_DDL | AG_GROUP_DESTRUCTIVE},
	{"CREATE OR REPLACE TRIGGER", AG_GROUP_DDL | AG_GROUP_DESTRUCTIVE},
	{"CREATE OR REPLACE RULE", AG_GROUP_DDL | AG_GROUP_DESTRUCTIVE},
	{"VACUUM FULL", AG_GROUP_ADMIN},
	{"SET SESSION_REPLICATION_ROLE", AG_GROUP_ADMIN},
	/* a function call; the tag of the same name (prepared statements) is never judged */
	{"EXECUTE", AG_GROUP_SESSION},
};

typedef struct AgGroupName
{
	const char *name;
	int			group;
} AgGroupName;

static const AgGroupName group_names[] = {
	{"ALL", AG_GROUP_ALL},
	{"READ", AG_GROUP_READ},
	{"WRITE", AG_GROUP_WRITE},
	{"DDL", AG_GROUP_DDL},
	{"DESTRUCTIVE", AG_GROUP_DESTRUCTIVE},
	{"ADMIN", AG_GROUP_ADMIN},
};

static const char *const read_tags[] = {
	"SELECT", "COPY", "SHOW", "EXPLAIN", "FETCH", "MOVE", "DECLARE CURSOR",
	"CLOSE CURSOR", "CLOSE CURSOR ALL", NULL
};

static const char *const session_tags[] = {
	"SET", "RESET", "BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK",
	"SAVEPOINT", "RELEASE", "PREPARE", "DEALLOCATE", "DEALLOCATE ALL",
	"DISCARD ALL", "DISCARD PLANS", "DISCARD SEQUENCES", "DISCARD TEMP",
	"LISTEN", "UNLISTEN", "NOTIFY", "DO", "CALL", "SET CONSTRAINTS",
	"ANALYZE", NULL
};

static const char *const write_tags[] = {
	"INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE TABLE", NULL
};

static const char *const admin_tags[] = {
	"ALTER SYSTEM", "LOAD", "CREATE ROLE", "ALTER ROLE", "DROP ROLE",
	"GRANT", "REVOKE", "GRANT ROLE", "REVOKE ROLE",
	"CREATE DATABASE", "ALTER DATABASE", "DROP DATABASE",
	"CREATE TABLESPACE", "ALTER TABLESPACE", "DROP TABLESPACE",
	"CREATE EXTENSION", "ALTER EXTENSION", "DROP EXTENSION",
	"CREATE EVENT TRIGGER", "ALTER EVENT TRIGGER", "DROP EVENT TRIGGER",
	"CREATE SUBSCRIPTION", "ALTER SUBSCRIPTION", "DROP SUBSCRIPTION",
	"CLUSTER", "REINDEX", "LOCK TABLE", "CHECKPOINT", "SECURITY LABEL",
	"ALTER DEFAULT PRIVILEGES", NULL
};

#define AG_CASCADE_SUFFIX " CASCADE"

static bool
ag_in_list(const char *command, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(command, *list) == 0)
			return true;
	return false;
}

static const AgRefinedCommand *
ag_find_refined(const char *command)
{
	int			i;

	for (i = 0; i < lengthof(refined_commands); i++)
		if (strcmp(command, refined_commands[i].name) == 0)
			return &refined_commands[i];
	return NULL;
}

/* Groups of a plain PostgreSQL command tag. */
static int
ag_tag_groups(const char *tag)
{
	int			groups = AG_GROUP_ALL;
	CommandTag	cmdtag = GetCommandTagEnum(tag);

	if (ag_in_list(tag, read_tags))
		groups |= AG_GROUP_READ;
	if (ag_in_list(tag, session_tags))
		groups |= AG_GROUP_SESSION;
	if (ag_in_list(tag, write_tags))
		groups |= AG_GROUP_WRITE;
	else if (cmdtag != CMDTAG_UNKNOWN && command_tag_event_trigger_ok(cmdtag))
		groups |= AG_GROUP_DDL;
	if (strncmp(tag, "DROP ", 5) == 0 ||
		strcmp(tag, "TRUNCATE TABLE") == 0 ||
		strcmp(tag, "REASSIGN OWNED") == 0)
		groups |= AG_GROUP_DESTRUCTIVE;
	if (ag_in_list(tag, admin_tags))
		groups |= AG_GROUP_ADMIN;
	return groups;
}

/* Does a tag accept the CASCADE refinement? */
static bool
ag_tag_cascades(const char *tag)
{
	return strncmp(tag, "DROP ", 5) == 0 || strcmp(tag, "TRUNCATE TABLE") == 0;
}

static int
ag_compute_groups(const char *command)
{
	const AgRefinedCommand *refined = ag_find_refined(command);
	size_t		len = strlen(command);
	size_t		suffix_len = strlen(AG_CASCADE_SUFFIX);

	if (refined)
		return refined->groups | AG_GROUP_ALL;
	if (len > suffix_len &&
		strcmp(command + len - suffix_len, AG_CASCADE_SUFFIX) == 0)
	{
		char	   *base = pnstrdup(command, len - suffix_len);
		int			groups = ag_tag_groups(base);

		pfree(base);
		return groups | AG_GROUP_DESTRUCTIVE;
	}
	return ag_tag_groups(command);
}

typedef struct AgGroupCacheEntry
{
	char		command[64];
	int			groups;
} AgGroupCacheEntry;

static HTAB *group_cache = NULL;

/* Groups a (canonical) command belongs to, as AG_GROUP_* bits. */
int
ag_command_groups(const char *command)
{
	AgGroupCacheEntry *entry;
	bool		found;

	if (strlen(command) >= 64)
		return ag_compute_groups(command);
	if (group_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = 64;
		ctl.entrysize = sizeof(AgGroupCacheEntry);
		ctl.hcxt = TopMemoryContext;
		group_cache = hash_create("agent_guard command groups", 128, &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	entry = hash_search(group_cache, command, HASH_ENTER, &found);
	if (!found)
		entry->groups = ag_compute_groups(command);
	return entry->groups;
}

/* The group bit a policy command names, or 0 if it names no group. */
int
ag_group_by_name(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(group_names); i++)
		if (strcmp(name, group_names[i].name) == 0)
			return group_names[i].group;
	return 0;
}

/*
 * The canonical spelling of a policy command (upper case, single spaces),
 * or NULL if it is neither a group, a refined command, nor a PostgreSQL
 * command tag (with CASCADE where the tag allows it).
 */
const char *
ag_canonical_command(const char *name)
{
	StringInfoData buf;
	const char *p;
	bool		space = false;
	size_t		len;
	size_t		suffix_len = strlen(AG_CASCADE_SUFFIX);
	CommandTag	tag;

	initStringInfo(&buf);
	for (p = name; *p; p++)
	{
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		{
			space = buf.len > 0;
			continue;
		}
		if (space)
			appendStringInfoChar(&buf, ' ');
		space = false;
		appendStringInfoChar(&buf, pg_ascii_toupper((unsigned char) *p));
	}
	if (buf.len == 0)
		return NULL;

	if (ag_group_by_name(buf.data) || ag_find_refined(buf.data))
		return buf.data;

	len = buf.len;
	if (len > suffix_len &&
		strcmp(buf.data + len - suffix_len, AG_CASCADE_SUFFIX) == 0)
	{
		char	   *base = pnstrdup(buf.data, len - suffix_len);

		tag = GetCommandTagEnum(base);
		if (tag != CMDTAG_UNKNOWN && ag_tag_cascades(GetCommandTagName(tag)))
			return buf.data;
		return NULL;
	}

	tag = GetCommandTagEnum(buf.data);
	if (tag == CMDTAG_UNKNOWN || strcmp(buf.data, "EXECUTE") == 0)
		return NULL;
	return GetCommandTagName(tag);
}

/* May a policy on this command carry max_rows? */
bool
ag_command_counts_rows(const char *command)
{
	static const char *const counted[] = {
		"INSERT", "UPDATE", "DELETE", "MERGE", "UPDATE WITHOUT WHERE",
		"DELETE WITHOUT WHERE", "WRITE", "DESTRUCTIVE", "ALL", NULL
	};

	return ag_in_list(command, counted);
}

/* Does a statement of this command change rows that can be counted? */
bool
ag_command_changes_rows(const char *command)
{
	static const char *const counted[] = {
		"INSERT", "UPDATE", "DELETE", "MERGE", "UPDATE WITHOUT WHERE",
		"DELETE WITHOUT WHERE", NULL
	};

	return ag_in_list(command, counted);
}

/* The list of valid commands, for error hints. */
const char *
ag_valid_commands_hint(void)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "Valid commands are the groups");
	for (i = 0; i < lengthof(group_names); i++)
		appendStringInfo(&buf, "%s %s", i ? "," : "", group_names[i].name);
	appendStringInfoString(&buf, "; the refined commands");
	for (i = 0; i < lengthof(refined_commands); i++)
		appendStringInfo(&buf, "%s %s", i ? "," : "", refined_commands[i].name);
	appendStringInfoString(&buf, "; any PostgreSQL command tag such as DROP TABLE or DELETE; and any DROP tag or TRUNCATE TABLE followed by CASCADE.");
	return buf.data;
}
