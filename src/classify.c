/*-------------------------------------------------------------------------
 *
 * classify.c
 *	  Resolve a statement to (command, object) pairs, from its parse tree
 *	  (utility statements) or its plan (everything the executor runs).
 *
 * Decisions are made on trees, never on query text.  Object names are
 * "schema.name" for schema-qualified objects and the bare name otherwise.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/heap.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_statistic_ext.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_func.h"
#include "parser/parse_type.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "rewrite/rewriteSupport.h"
#include "tcop/cmdtag.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#define AG_UNKNOWN_OBJECT "(unknown)"
#define AG_MAX_CASCADE_OBJECTS 1000

/* ---------- names ---------- */

static char *
ag_qualified(const char *schema, const char *name)
{
	if (schema == NULL)
		return pstrdup(name);
	return psprintf("%s.%s", schema, name);
}

static char *
ag_relation_name(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		return NULL;
	return ag_qualified(get_namespace_name(get_rel_namespace(relid)), relname);
}

static char *
ag_function_name(Oid funcid)
{
	char	   *name = get_func_name(funcid);

	if (name == NULL)
		return NULL;
	return ag_qualified(get_namespace_name(get_func_namespace(funcid)), name);
}

/* Name of the schema a new unqualified object would be created in. */
static char *
ag_creation_schema(void)
{
	List	   *path = fetch_search_path(false);
	char	   *name = NULL;

	if (path != NIL)
		name = get_namespace_name(linitial_oid(path));
	list_free(path);
	return name;
}

/*
 * Name a relation as written: its real qualified name when it exists,
 * otherwise the name it would get.  No lock is taken: classification must
 * not let an unprivileged agent block others.
 */
static char *
ag_rangevar_name(RangeVar *rv, Oid *relid)
{
	Oid			oid = RangeVarGetRelid(rv, NoLock, true);

	if (relid)
		*relid = oid;
	if (OidIsValid(oid))
	{
		char	   *name = ag_relation_name(oid);

		if (name)
			return name;
	}
	if (rv->schemaname)
		return ag_qualified(rv->schemaname, rv->relname);
	if (rv->relpersistence == RELPERSISTENCE_TEMP)
		return ag_qualified("pg_temp", rv->relname);
	return ag_qualified(ag_creation_schema(), rv->relname);
}

static char *
ag_namelist_name(List *names)
{
	return ag_rangevar_name(makeRangeVarFromNameList(names), NULL);
}

static char *
ag_rolespec_name(RoleSpec *role)
{
	switch (role->roletype)
	{
		case ROLESPEC_CSTRING:
			return pstrdup(role->rolename);
		case ROLESPEC_CURRENT_ROLE:
		case ROLESPEC_CURRENT_USER:
			return GetUserNameFromId(GetUserId(), true);
		case ROLESPEC_SESSION_USER:
			return GetUserNameFromId(GetSessionUserId(), true);
		case ROLESPEC_PUBLIC:
			return pstrdup("public");
	}
	return pstrdup(AG_UNKNOWN_OBJECT);
}

static Oid	ag_dependent_table(ObjectAddress dependent);

static bool
ag_is_relation_type(ObjectType type)
{
	switch (type)
	{
		case OBJECT_TABLE:
		case OBJECT_VIEW:
		case OBJECT_MATVIEW:
		case OBJECT_SEQUENCE:
		case OBJECT_INDEX:
		case OBJECT_FOREIGN_TABLE:
			return true;
		default:
			return false;
	}
}

/*
 * Name any object a utility statement refers to.  Functions are named
 * without their argument list, like EXECUTE objects, so one pattern
 * covers both.
 */
static char *
ag_object_name(ObjectType type, Node *object, ObjectAddress *address_out)
{
	ObjectAddress address;
	Relation	rel = NULL;

	if (address_out)
		address_out->objectId = InvalidOid;
	if (object == NULL)
		return pstrdup(AG_UNKNOWN_OBJECT);

	if (ag_is_relation_type(type) && IsA(object, List))
	{
		Oid			relid;
		char	   *name = ag_rangevar_name(makeRangeVarFromNameList((List *) object), &relid);

		if (address_out && OidIsValid(relid))
			ObjectAddressSet(*address_out, RelationRelationId, relid);
		return name;
	}

	address = get_object_address(type, object, &rel, AccessShareLock, true);
	if (rel)
		relation_close(rel, NoLock);
	if (OidIsValid(address.objectId))
	{
		Oid			table;

		if (address_out)
			*address_out = address;
		if (address.classId == ProcedureRelationId)
			return ag_function_name(address.objectId);
		if (address.classId == RelationRelationId)
			return ag_relation_name(address.objectId);
		/* a trigger, rule, policy or constraint: changing it changes its table */
		if (OidIsValid(table = ag_dependent_table(address)))
			return ag_relation_name(table);
		return getObjectIdentity(&address, true);
	}

	/* Not found: name it as written. */
	if (IsA(object, List))
		return NameListToString((List *) object);
	if (IsA(object, String))
		return pstrdup(strVal(object));
	if (IsA(object, ObjectWithArgs))
		return NameListToString(((ObjectWithArgs *) object)->objname);
	if (IsA(object, TypeName))
		return TypeNameToString((TypeName *) object);
	return pstrdup(AG_UNKNOWN_OBJECT);
}

/* ---------- pairs ---------- */

/* Add a pair unless the same one is there already. */
List *
ag_add_pair(List *pairs, const char *command, char *object, Oid relid)
{
	ListCell   *lc;
	AgPair	   *pair;

	if (object == NULL)
		object = pstrdup(AG_UNKNOWN_OBJECT);
	foreach(lc, pairs)
	{
		AgPair	   *existing = lfirst(lc);

		if (strcmp(existing->command, command) == 0 &&
			strcmp(existing->object, object) == 0)
			return pairs;
	}
	pair = palloc(sizeof(AgPair));
	pair->command = command;
	pair->object = object;
	pair->relid = relid;
	pair->funcid = InvalidOid;
	return lappend(pairs, pair);
}

static const char *
ag_with_cascade(const char *tag, DropBehavior behavior)
{
	if (behavior == DROP_CASCADE)
		return psprintf("%s CASCADE", tag);
	return tag;
}

/* ---------- CASCADE: what would be taken along ---------- */

/* The object a dependent is an internal part of (a view for its rule). */
static ObjectAddress
ag_owning_object(ObjectAddress dependent)
{
	Relation	depRel;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	ObjectAddress owner = dependent;

	depRel = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_classid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(dependent.classId));
	ScanKeyInit(&key[1], Anum_pg_depend_objid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(dependent.objectId));
	scan = systable_beginscan(depRel, DependDependerIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

		if (dep->deptype == DEPENDENCY_INTERNAL)
		{
			owner.classId = dep->refclassid;
			owner.objectId = dep->refobjid;
			owner.objectSubId = 0;
			break;
		}
	}
	systable_endscan(scan);
	table_close(depRel, AccessShareLock);
	return owner;
}

/* Catalogs of objects that are part of one table, and the column naming it. */
typedef struct AgTablePart
{
	Oid			classId;
	AttrNumber	oidAttnum;
	AttrNumber	relAttnum;
} AgTablePart;

static const AgTablePart table_parts[] = {
	{ConstraintRelationId, Anum_pg_constraint_oid, Anum_pg_constraint_conrelid},
	{TriggerRelationId, Anum_pg_trigger_oid, Anum_pg_trigger_tgrelid},
	{RewriteRelationId, Anum_pg_rewrite_oid, Anum_pg_rewrite_ev_class},
	{PolicyRelationId, Anum_pg_policy_oid, Anum_pg_policy_polrelid},
	{StatisticExtRelationId, Anum_pg_statistic_ext_oid, Anum_pg_statistic_ext_stxrelid},
};

/*
 * The table a dependent object belongs to: CASCADE that drops a column
 * default, a constraint, an index, a trigger or a rule changes that table,
 * wherever the table lives.  InvalidOid when the object is no part of one.
 */
static Oid
ag_dependent_table(ObjectAddress dependent)
{
	int			i;

	if (dependent.classId == RelationRelationId)
	{
		char		relkind = get_rel_relkind(dependent.objectId);

		if (relkind == RELKIND_INDEX || relkind == RELKIND_PARTITIONED_INDEX)
			return IndexGetRelation(dependent.objectId, true);
		return InvalidOid;
	}
	if (dependent.classId == AttrDefaultRelationId)
		return GetAttrDefaultColumnAddress(dependent.objectId).objectId;
	for (i = 0; i < lengthof(table_parts); i++)
	{
		Relation	catalog;
		HeapTuple	tuple;
		Oid			relid = InvalidOid;

		if (table_parts[i].classId != dependent.classId)
			continue;
		catalog = table_open(dependent.classId, AccessShareLock);
		tuple = get_catalog_object_by_oid(catalog, table_parts[i].oidAttnum,
										  dependent.objectId);
		if (HeapTupleIsValid(tuple))
		{
			bool		isnull;
			Datum		value = heap_getattr(tuple, table_parts[i].relAttnum,
											 RelationGetDescr(catalog), &isnull);

			if (!isnull)
				relid = DatumGetObjectId(value);
		}
		table_close(catalog, AccessShareLock);
		return relid;
	}
	return InvalidOid;
}

/*
 * Add, under the CASCADE command, every relation and function that
 * dropping the object would take with it, following normal dependencies
 * the way CASCADE does.
 */
static List *
ag_add_cascade_dependents(List *pairs, const char *command, ObjectAddress object,
						  int depth)
{
	Relation	depRel;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *found = NIL;
	ListCell   *lc;

	if (depth > 32 || list_length(pairs) > AG_MAX_CASCADE_OBJECTS)
		return pairs;
	CHECK_FOR_INTERRUPTS();

	depRel = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(object.classId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(object.objectId));
	scan = systable_beginscan(depRel, DependReferenceIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);
		ObjectAddress *dependent;

		if (dep->deptype != DEPENDENCY_NORMAL && dep->deptype != DEPENDENCY_AUTO)
			continue;
		/* a sequence owned by a column goes with its table anyway */
		if (dep->deptype == DEPENDENCY_AUTO && dep->classid == RelationRelationId &&
			get_rel_relkind(dep->objid) == RELKIND_SEQUENCE)
			continue;
		dependent = palloc(sizeof(ObjectAddress));
		dependent->classId = dep->classid;
		dependent->objectId = dep->objid;
		dependent->objectSubId = 0;
		found = lappend(found, dependent);
	}
	systable_endscan(scan);
	table_close(depRel, AccessShareLock);

	/* what uses a relation's row type (functions, columns) goes with it too */
	if (object.classId == RelationRelationId && OidIsValid(get_rel_type_id(object.objectId)))
	{
		ObjectAddress rowtype;

		ObjectAddressSet(rowtype, TypeRelationId, get_rel_type_id(object.objectId));
		pairs = ag_add_cascade_dependents(pairs, command, rowtype, depth + 1);
	}

	foreach(lc, found)
	{
		ObjectAddress dependent = *(ObjectAddress *) lfirst(lc);
		char	   *name = NULL;
		Oid			relid = InvalidOid;
		int			before;

		if (dependent.classId == RewriteRelationId)
			dependent = ag_owning_object(dependent);
		if (OidIsValid(relid = ag_dependent_table(dependent)))
		{
			/*
			 * A part of a table (a default, constraint, index, trigger or
			 * rule): that table changes, and what depends on the part goes.
			 */
			if (relid != object.objectId)
				pairs = ag_add_pair(pairs, command, ag_relation_name(relid), relid);
			pairs = ag_add_cascade_dependents(pairs, command, dependent, depth + 1);
			continue;
		}
		if (dependent.classId == RelationRelationId)
		{
			if (get_rel_relkind(dependent.objectId) == RELKIND_TOASTVALUE)
				continue;
			name = ag_relation_name(dependent.objectId);
			relid = dependent.objectId;
		}
		else if (dependent.classId == ProcedureRelationId)
			name = ag_function_name(dependent.objectId);
		if (name == NULL)
			continue;
		if (OidIsValid(relid) && relid == object.objectId)
			continue;
		before = list_length(pairs);
		pairs = ag_add_pair(pairs, command, name, relid);
		if (list_length(pairs) > before)
			pairs = ag_add_cascade_dependents(pairs, command, dependent, depth + 1);
	}
	return pairs;
}

/* ---------- utility statements ---------- */

/* Pairs for every table that inherits from relid, at any depth. */
static List *
ag_add_inheritors(List *pairs, const char *command, Oid relid)
{
	List	   *inheritors = find_all_inheritors(relid, NoLock, NULL);
	ListCell   *lc;

	foreach(lc, inheritors)
	{
		Oid			child = lfirst_oid(lc);

		if (child != relid && list_length(pairs) <= AG_MAX_CASCADE_OBJECTS)
			pairs = ag_add_pair(pairs, command, ag_relation_name(child), child);
	}
	list_free(inheritors);
	return pairs;
}

static List *
ag_classify_drop(DropStmt *stmt, const char *tag)
{
	const char *command = ag_with_cascade(tag, stmt->behavior);
	List	   *pairs = NIL;
	List	   *addresses = NIL;
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		ObjectAddress *address = palloc(sizeof(ObjectAddress));
		char	   *name = ag_object_name(stmt->removeType, lfirst(lc), address);
		Oid			relid = InvalidOid;

		if (OidIsValid(address->objectId))
		{
			if (address->classId == RelationRelationId)
				relid = address->objectId;
			addresses = lappend(addresses, address);
		}
		pairs = ag_add_pair(pairs, command, name, relid);
		/* a partitioned table's partitions go with it, even without CASCADE */
		if (OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
			pairs = ag_add_inheritors(pairs, command, relid);
	}
	if (stmt->behavior == DROP_CASCADE)
	{
		foreach(lc, addresses)
			pairs = ag_add_cascade_dependents(pairs, command,
											  *(ObjectAddress *) lfirst(lc), 0);
	}
	return pairs;
}

static List *
ag_classify_truncate(TruncateStmt *stmt)
{
	const char *command = ag_with_cascade("TRUNCATE TABLE", stmt->behavior);
	List	   *pairs = NIL;
	List	   *relids = NIL;
	ListCell   *lc;

	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst(lc);
		Oid			relid;
		char	   *name = ag_rangevar_name(rv, &relid);

		pairs = ag_add_pair(pairs, command, name, relid);
		if (OidIsValid(relid))
			relids = lappend_oid(relids, relid);
		/* without ONLY, inheritance children and partitions are emptied too */
		if (OidIsValid(relid) && (rv->inh || get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE))
			pairs = ag_add_inheritors(pairs, command, relid);
	}
	if (stmt->behavior == DROP_CASCADE && relids != NIL)
	{
		/* CASCADE empties every table that references these, transitively */
		List	   *all = list_copy(relids);

		for (;;)
		{
			List	   *more = heap_truncate_find_FKs(all);
			bool		grew = false;

			foreach(lc, more)
			{
				Oid			relid = lfirst_oid(lc);

				if (!list_member_oid(all, relid))
				{
					all = lappend_oid(all, relid);
					pairs = ag_add_pair(pairs, command, ag_relation_name(relid), relid);
					grew = true;
				}
			}
			if (!grew || list_length(all) > AG_MAX_CASCADE_OBJECTS)
				break;
		}
	}
	return pairs;
}

static List *
ag_classify_alter_table(AlterTableStmt *stmt, const char *tag)
{
	List	   *pairs = NIL;
	Oid			relid;
	char	   *name = ag_rangevar_name(stmt->relation, &relid);
	bool		plain = false;
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);

		if (stmt->objtype != OBJECT_TABLE)
		{
			plain = true;
			continue;
		}
		switch (cmd->subtype)
		{
			case AT_DropColumn:
				pairs = ag_add_pair(pairs, "ALTER TABLE DROP COLUMN", name, relid);
				break;
			case AT_AlterColumnType:
				pairs = ag_add_pair(pairs, "ALTER TABLE ALTER COLUMN TYPE", name, relid);
				break;
			case AT_DetachPartition:
			case AT_DetachPartitionFinalize:
				{
					PartitionCmd *partcmd = (PartitionCmd *) cmd->def;
					Oid			partid;
					char	   *partname = ag_rangevar_name(partcmd->name, &partid);

					pairs = ag_add_pair(pairs, "ALTER TABLE DETACH PARTITION", name, relid);
					pairs = ag_add_pair(pairs, "ALTER TABLE DETACH PARTITION", partname, partid);
					break;
				}
			default:
				plain = true;
				break;
		}
	}
	if (plain || pairs == NIL)
		pairs = ag_add_pair(pairs, tag, name, relid);
	return pairs;
}

/* Does CREATE OR REPLACE FUNCTION/PROCEDURE find an existing routine? */
static bool
ag_function_exists(CreateFunctionStmt *stmt)
{
	Oid			argtypes[FUNC_MAX_ARGS];
	int			nargs = 0;
	ListCell   *lc;

	foreach(lc, stmt->parameters)
	{
		FunctionParameter *param = lfirst(lc);
		Oid			typid;

		if (param->mode == FUNC_PARAM_OUT || param->mode == FUNC_PARAM_TABLE)
			continue;
		if (nargs >= FUNC_MAX_ARGS)
			return false;
		typid = LookupTypeNameOid(NULL, param->argType, true);
		if (!OidIsValid(typid))
			return false;
		argtypes[nargs++] = typid;
	}
	return OidIsValid(LookupFuncName(stmt->funcname, nargs, argtypes, true));
}

static bool
ag_trigger_exists(Oid relid, const char *trigname)
{
	return OidIsValid(relid) && OidIsValid(get_trigger_oid(relid, trigname, true));
}

static List *
ag_classify_grant(GrantStmt *stmt, const char *tag)
{
	List	   *pairs = NIL;
	ListCell   *lc;

	if (stmt->targtype == ACL_TARGET_ALL_IN_SCHEMA)
	{
		foreach(lc, stmt->objects)
			pairs = ag_add_pair(pairs, tag, psprintf("%s.*", strVal(lfirst(lc))), InvalidOid);
		return pairs;
	}
	if (stmt->targtype != ACL_TARGET_OBJECT)
		return ag_add_pair(pairs, tag, pstrdup(AG_UNKNOWN_OBJECT), InvalidOid);

	foreach(lc, stmt->objects)
	{
		Node	   *object = lfirst(lc);
		Oid			relid = InvalidOid;
		char	   *name;

		if (IsA(object, RangeVar))
			name = ag_rangevar_name((RangeVar *) object, &relid);
		else
			name = ag_object_name(stmt->objtype, object, NULL);
		pairs = ag_add_pair(pairs, tag, name, relid);
	}
	return pairs;
}

static List *
ag_classify_roles(List *roles, const char *tag)
{
	List	   *pairs = NIL;
	ListCell   *lc;

	foreach(lc, roles)
		pairs = ag_add_pair(pairs, tag, ag_rolespec_name(lfirst(lc)), InvalidOid);
	return pairs;
}

/* SET, ALTER ROLE ... SET and friends: the setting is the object. */
static List *
ag_classify_setting(List *pairs, VariableSetStmt *setstmt, const char *tag)
{
	const char *name = setstmt->name ? setstmt->name : "all";

	if (pg_strcasecmp(name, "session_replication_role") == 0 &&
		setstmt->kind != VAR_RESET)
		return ag_add_pair(pairs, "SET SESSION_REPLICATION_ROLE", pstrdup(name), InvalidOid);
	return ag_add_pair(pairs, tag, pstrdup(name), InvalidOid);
}

/*
 * ALTER ROLE/DATABASE ... SET: settings stored for the next login.  RESET
 * ALL removes the agent_guard settings an administrator stored too, and
 * libraries to preload are libraries loaded.
 */
static List *
ag_classify_stored_setting(List *pairs, VariableSetStmt *setstmt)
{
	if (setstmt->kind == VAR_RESET_ALL)
		pairs = ag_add_pair(pairs, "RESET", pstrdup("agent_guard.*"), InvalidOid);
	else if (setstmt->name && setstmt->kind != VAR_RESET &&
			 (pg_strcasecmp(setstmt->name, "session_preload_libraries") == 0 ||
			  pg_strcasecmp(setstmt->name, "local_preload_libraries") == 0))
		pairs = ag_add_pair(pairs, "LOAD", pstrdup(setstmt->name), InvalidOid);
	return ag_classify_setting(pairs, setstmt, "SET");
}

/*
 * CREATE/ALTER FUNCTION ... SET: the function changes the setting each
 * time it runs, so defining it is judged as changing the setting.
 */
static List *
ag_classify_function_settings(List *pairs, List *options)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *option = lfirst(lc);

		if (strcmp(option->defname, "set") == 0 && IsA(option->arg, VariableSetStmt))
			pairs = ag_classify_setting(pairs, (VariableSetStmt *) option->arg, "SET");
	}
	return pairs;
}

static char *
ag_rangevar_or_all(RangeVar *rv, Oid *relid)
{
	*relid = InvalidOid;
	if (rv == NULL)
		return pstrdup("*");
	return ag_rangevar_name(rv, relid);
}

/*
 * Pairs for a utility statement.  Statements that only move control
 * elsewhere (DO, EXPLAIN, EXECUTE of a prepared statement, cursors,
 * transaction control) yield none: what they run is judged where it runs.
 */
List *
ag_classify_utility(Node *parsetree)
{
	const char *tag = GetCommandTagName(CreateCommandTag(parsetree));
	List	   *pairs = NIL;
	Oid			relid = InvalidOid;
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_TransactionStmt:
		case T_VariableShowStmt:
		case T_PrepareStmt:
		case T_ExecuteStmt:
		case T_DeallocateStmt:
		case T_DeclareCursorStmt:
		case T_FetchStmt:
		case T_ClosePortalStmt:
		case T_ListenStmt:
		case T_UnlistenStmt:
		case T_DiscardStmt:
		case T_ConstraintsSetStmt:
		case T_ExplainStmt:
		case T_DoStmt:
			return NIL;

		case T_NotifyStmt:
			{
				char	   *channel = ((NotifyStmt *) parsetree)->conditionname;

				/* agent_guard's notifications come from its writer only */
				if (strncmp(channel, AG_CHANNEL_PREFIX, strlen(AG_CHANNEL_PREFIX)) == 0)
					return ag_add_pair(NIL, tag, pstrdup(channel), InvalidOid);
				return NIL;
			}

		case T_VariableSetStmt:
			return ag_classify_setting(NIL, (VariableSetStmt *) parsetree, tag);

		case T_AlterSystemStmt:
			return ag_add_pair(NIL, tag,
							   pstrdup(((AlterSystemStmt *) parsetree)->setstmt->name ?
									   ((AlterSystemStmt *) parsetree)->setstmt->name : "all"),
							   InvalidOid);

		case T_AlterRoleSetStmt:
			{
				AlterRoleSetStmt *stmt = (AlterRoleSetStmt *) parsetree;

				pairs = ag_add_pair(NIL, tag,
									stmt->role ? ag_rolespec_name(stmt->role) : pstrdup("all"),
									InvalidOid);
				return ag_classify_stored_setting(pairs, stmt->setstmt);
			}

		case T_AlterDatabaseSetStmt:
			{
				AlterDatabaseSetStmt *stmt = (AlterDatabaseSetStmt *) parsetree;

				pairs = ag_add_pair(NIL, tag, pstrdup(stmt->dbname), InvalidOid);
				return ag_classify_stored_setting(pairs, stmt->setstmt);
			}

		case T_LoadStmt:
			return ag_add_pair(NIL, tag, pstrdup(((LoadStmt *) parsetree)->filename), InvalidOid);

		case T_DropStmt:
			return ag_classify_drop((DropStmt *) parsetree, tag);

		case T_TruncateStmt:
			return ag_classify_truncate((TruncateStmt *) parsetree);

		case T_AlterTableStmt:
			return ag_classify_alter_table((AlterTableStmt *) parsetree, tag);

		case T_CopyStmt:
			{
				CopyStmt   *stmt = (CopyStmt *) parsetree;
				const char *command;
				char	   *name;

				if (stmt->is_program)
					command = stmt->is_from ? "COPY FROM PROGRAM" : "COPY TO PROGRAM";
				else if (stmt->is_from)
					command = "COPY FROM";
				else
					command = stmt->filename ? "COPY TO FILE" : "COPY";
				name = stmt->relation ? ag_rangevar_name(stmt->relation, &relid)
					: pstrdup("(query)");
				return ag_add_pair(NIL, command, name, relid);
			}

		case T_VacuumStmt:
			{
				VacuumStmt *stmt = (VacuumStmt *) parsetree;
				const char *command = tag;

				foreach(lc, stmt->options)
				{
					DefElem    *opt = lfirst(lc);

					if (strcmp(opt->defname, "full") == 0 && defGetBoolean(opt))
						command = "VACUUM FULL";
				}
				if (stmt->rels == NIL)
					return ag_add_pair(NIL, command, pstrdup("*"), InvalidOid);
				foreach(lc, stmt->rels)
				{
					VacuumRelation *vrel = lfirst(lc);
					char	   *name = ag_rangevar_or_all(vrel->relation, &relid);

					pairs = ag_add_pair(pairs, command, name, relid);
				}
				return pairs;
			}

		case T_ClusterStmt:
			return ag_add_pair(NIL, tag,
							   ag_rangevar_or_all(((ClusterStmt *) parsetree)->relation, &relid),
							   relid);

		case T_ReindexStmt:
			{
				ReindexStmt *stmt = (ReindexStmt *) parsetree;

				if (stmt->relation)
					return ag_add_pair(NIL, tag, ag_rangevar_name(stmt->relation, &relid), relid);
				return ag_add_pair(NIL, tag, pstrdup(stmt->name ? stmt->name : "*"), InvalidOid);
			}

		case T_LockStmt:
			foreach(lc, ((LockStmt *) parsetree)->relations)
			{
				char	   *name = ag_rangevar_name(lfirst(lc), &relid);

				pairs = ag_add_pair(pairs, tag, name, relid);
			}
			return pairs;

		case T_GrantStmt:
			return ag_classify_grant((GrantStmt *) parsetree, tag);

		case T_GrantRoleStmt:
			foreach(lc, ((GrantRoleStmt *) parsetree)->granted_roles)
			{
				AccessPriv *priv = lfirst(lc);

				pairs = ag_add_pair(pairs, tag, pstrdup(priv->priv_name ? priv->priv_name : AG_UNKNOWN_OBJECT),
									InvalidOid);
			}
			return pairs;

		case T_CreateRoleStmt:
			return ag_add_pair(NIL, tag, pstrdup(((CreateRoleStmt *) parsetree)->role), InvalidOid);

		case T_AlterRoleStmt:
			return ag_add_pair(NIL, tag, ag_rolespec_name(((AlterRoleStmt *) parsetree)->role), InvalidOid);

		case T_DropRoleStmt:
			return ag_classify_roles(((DropRoleStmt *) parsetree)->roles, tag);

		case T_DropOwnedStmt:
			return ag_classify_roles(((DropOwnedStmt *) parsetree)->roles,
									 ag_with_cascade(tag, ((DropOwnedStmt *) parsetree)->behavior));

		case T_ReassignOwnedStmt:
			return ag_classify_roles(((ReassignOwnedStmt *) parsetree)->roles, tag);

		case T_CreatedbStmt:
			return ag_add_pair(NIL, tag, pstrdup(((CreatedbStmt *) parsetree)->dbname), InvalidOid);

		case T_AlterDatabaseStmt:
			return ag_add_pair(NIL, tag, pstrdup(((AlterDatabaseStmt *) parsetree)->dbname), InvalidOid);

		case T_DropdbStmt:
			return ag_add_pair(NIL, tag, pstrdup(((DropdbStmt *) parsetree)->dbname), InvalidOid);

		case T_CreateExtensionStmt:
			return ag_add_pair(NIL, tag, pstrdup(((CreateExtensionStmt *) parsetree)->extname), InvalidOid);

		case T_AlterExtensionStmt:
			return ag_add_pair(NIL, tag, pstrdup(((AlterExtensionStmt *) parsetree)->extname), InvalidOid);

		case T_AlterExtensionContentsStmt:
			return ag_add_pair(NIL, tag, pstrdup(((AlterExtensionContentsStmt *) parsetree)->extname), InvalidOid);

		case T_CallStmt:
			{
				CallStmt   *stmt = (CallStmt *) parsetree;
				char	   *name;

				if (stmt->funcexpr)
					name = ag_function_name(stmt->funcexpr->funcid);
				else
					name = NameListToString(stmt->funccall->funcname);
				pairs = ag_add_pair(NIL, tag, name, InvalidOid);
				return ag_add_pair(pairs, "EXECUTE", name, InvalidOid);
			}

		case T_CreateStmt:
		case T_CreateForeignTableStmt:
			return ag_add_pair(NIL, tag, ag_rangevar_name(((CreateStmt *) parsetree)->relation, &relid), relid);

		case T_CreateTableAsStmt:
			return ag_add_pair(NIL, tag,
							   ag_rangevar_name(((CreateTableAsStmt *) parsetree)->into->rel, &relid),
							   relid);

		case T_RefreshMatViewStmt:
			return ag_add_pair(NIL, tag,
							   ag_rangevar_name(((RefreshMatViewStmt *) parsetree)->relation, &relid),
							   relid);

		case T_ViewStmt:
			{
				ViewStmt   *stmt = (ViewStmt *) parsetree;
				char	   *name = ag_rangevar_name(stmt->view, &relid);

				if (stmt->replace && OidIsValid(relid))
					tag = "CREATE OR REPLACE VIEW";
				return ag_add_pair(NIL, tag, name, relid);
			}

		case T_CreateFunctionStmt:
			{
				CreateFunctionStmt *stmt = (CreateFunctionStmt *) parsetree;

				if (stmt->replace && ag_function_exists(stmt))
					tag = stmt->is_procedure ? "CREATE OR REPLACE PROCEDURE"
						: "CREATE OR REPLACE FUNCTION";
				pairs = ag_add_pair(NIL, tag, ag_namelist_name(stmt->funcname), InvalidOid);
				return ag_classify_function_settings(pairs, stmt->options);
			}

		case T_CreateTrigStmt:
			{
				CreateTrigStmt *stmt = (CreateTrigStmt *) parsetree;
				char	   *name = ag_rangevar_name(stmt->relation, &relid);

				if (stmt->replace && ag_trigger_exists(relid, stmt->trigname))
					tag = "CREATE OR REPLACE TRIGGER";
				return ag_add_pair(NIL, tag, name, relid);
			}

		case T_RuleStmt:
			{
				RuleStmt   *stmt = (RuleStmt *) parsetree;
				char	   *name = ag_rangevar_name(stmt->relation, &relid);

				if (stmt->replace && OidIsValid(relid) &&
					OidIsValid(get_rewrite_oid(relid, stmt->rulename, true)))
					tag = "CREATE OR REPLACE RULE";
				return ag_add_pair(NIL, tag, name, relid);
			}

		case T_IndexStmt:
			return ag_add_pair(NIL, tag, ag_rangevar_name(((IndexStmt *) parsetree)->relation, &relid), relid);

		case T_CreateSeqStmt:
			return ag_add_pair(NIL, tag, ag_rangevar_name(((CreateSeqStmt *) parsetree)->sequence, &relid), relid);

		case T_AlterSeqStmt:
			return ag_add_pair(NIL, tag, ag_rangevar_name(((AlterSeqStmt *) parsetree)->sequence, &relid), relid);

		case T_CreatePolicyStmt:
			return ag_add_pair(NIL, tag, ag_rangevar_name(((CreatePolicyStmt *) parsetree)->table, &relid), relid);

		case T_AlterPolicyStmt:
			return ag_add_pair(NIL, tag, ag_rangevar_name(((AlterPolicyStmt *) parsetree)->table, &relid), relid);

		case T_CreateSchemaStmt:
			{
				CreateSchemaStmt *stmt = (CreateSchemaStmt *) parsetree;
				char	   *name = stmt->schemaname ? pstrdup(stmt->schemaname)
					: ag_rolespec_name(stmt->authrole);

				return ag_add_pair(NIL, tag, name, InvalidOid);
			}

		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;
				char	   *name = stmt->relation ? ag_rangevar_name(stmt->relation, &relid)
					: ag_object_name(stmt->renameType, stmt->object, NULL);

				return ag_add_pair(NIL, tag, name, relid);
			}

		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *stmt = (AlterObjectSchemaStmt *) parsetree;
				char	   *name = stmt->relation ? ag_rangevar_name(stmt->relation, &relid)
					: ag_object_name(stmt->objectType, stmt->object, NULL);

				pairs = ag_add_pair(NIL, tag, name, relid);
				/* moving an object into a schema changes that schema too */
				return ag_add_pair(pairs, tag, psprintf("%s.%s", stmt->newschema,
														strrchr(name, '.') ? strrchr(name, '.') + 1 : name),
								   InvalidOid);
			}

		case T_AlterOwnerStmt:
			{
				AlterOwnerStmt *stmt = (AlterOwnerStmt *) parsetree;
				char	   *name = stmt->relation ? ag_rangevar_name(stmt->relation, &relid)
					: ag_object_name(stmt->objectType, stmt->object, NULL);

				return ag_add_pair(NIL, tag, name, relid);
			}

		case T_CommentStmt:
			return ag_add_pair(NIL, tag,
							   ag_object_name(((CommentStmt *) parsetree)->objtype,
											  ((CommentStmt *) parsetree)->object, NULL),
							   InvalidOid);

		case T_SecLabelStmt:
			{
				SecLabelStmt *stmt = (SecLabelStmt *) parsetree;
				char	   *name = ag_object_name(stmt->objtype, stmt->object, NULL);

				pairs = ag_add_pair(NIL, tag, name, InvalidOid);
				/* relabelling under our provider is (un)registering an agent */
				if (stmt->provider && strcmp(stmt->provider, "agent_guard") == 0)
					pairs = ag_add_pair(pairs, tag, pstrdup("agent_guard"), InvalidOid);
				return pairs;
			}

		case T_AlterFunctionStmt:
			pairs = ag_add_pair(NIL, tag,
								ag_object_name(((AlterFunctionStmt *) parsetree)->objtype,
											   (Node *) ((AlterFunctionStmt *) parsetree)->func, NULL),
								InvalidOid);
			return ag_classify_function_settings(pairs, ((AlterFunctionStmt *) parsetree)->actions);

		case T_DefineStmt:
			return ag_add_pair(NIL, tag, NameListToString(((DefineStmt *) parsetree)->defnames), InvalidOid);

		case T_CompositeTypeStmt:
			return ag_add_pair(NIL, tag, ag_rangevar_name(((CompositeTypeStmt *) parsetree)->typevar, NULL), InvalidOid);

		case T_CreateEnumStmt:
			return ag_add_pair(NIL, tag, NameListToString(((CreateEnumStmt *) parsetree)->typeName), InvalidOid);

		case T_CreateDomainStmt:
			return ag_add_pair(NIL, tag, NameListToString(((CreateDomainStmt *) parsetree)->domainname), InvalidOid);

		case T_CreateStatsStmt:
			{
				CreateStatsStmt *stmt = (CreateStatsStmt *) parsetree;

				if (stmt->defnames)
					pairs = ag_add_pair(NIL, tag, ag_namelist_name(stmt->defnames), InvalidOid);
				foreach(lc, stmt->relations)
				{
					if (!IsA(lfirst(lc), RangeVar))
						continue;
					pairs = ag_add_pair(pairs, tag, ag_rangevar_name(lfirst(lc), &relid), relid);
				}
				return pairs ? pairs : ag_add_pair(NIL, tag, pstrdup(AG_UNKNOWN_OBJECT), InvalidOid);
			}

		case T_AlterDefaultPrivilegesStmt:
			foreach(lc, ((AlterDefaultPrivilegesStmt *) parsetree)->options)
			{
				DefElem    *option = lfirst(lc);
				ListCell   *sc;

				if (strcmp(option->defname, "schemas") != 0)
					continue;
				foreach(sc, (List *) option->arg)
					pairs = ag_add_pair(pairs, tag, pstrdup(strVal(lfirst(sc))), InvalidOid);
			}
			return pairs ? pairs : ag_add_pair(NIL, tag, pstrdup("*"), InvalidOid);

		case T_CreateEventTrigStmt:
			return ag_add_pair(NIL, tag, pstrdup(((CreateEventTrigStmt *) parsetree)->trigname), InvalidOid);

		case T_AlterEventTrigStmt:
			return ag_add_pair(NIL, tag, pstrdup(((AlterEventTrigStmt *) parsetree)->trigname), InvalidOid);

		default:
			return ag_add_pair(NIL, tag, pstrdup(AG_UNKNOWN_OBJECT), InvalidOid);
	}
}

/* EXECUTE pairs for the functions called, each with its OID. */
static List *
ag_add_function_pairs(List *pairs, List *funcids)
{
	ListCell   *lc;

	foreach(lc, funcids)
	{
		int			before = list_length(pairs);

		pairs = ag_add_pair(pairs, "EXECUTE", ag_function_name(lfirst_oid(lc)), InvalidOid);
		if (list_length(pairs) > before)
			((AgPair *) llast(pairs))->funcid = lfirst_oid(lc);
	}
	return pairs;
}

/* Function calls are wanted for EXECUTE policies, and where reads only are allowed. */
static bool
ag_want_functions(void)
{
	return !ag_extension_present() || ag_has_execute_policies();
}

/* ---------- plans ---------- */

typedef struct AgPlanContext
{
	PlannedStmt *pstmt;
	List	   *pairs;
	List	   *funcids;		/* functions called, when wanted */
	bool		want_functions;
	bool		writes;			/* a ModifyTable was seen */
	ParamListInfo params;		/* the statement's parameters, if known */
	Oid			guard_schema;	/* agent_guard's schema, always reported */
} AgPlanContext;

/*
 * Does this scan read its whole relation, i.e. did the UPDATE or DELETE
 * above it have no effective WHERE clause?  Constant-true conditions are
 * folded away by the planner, so "WHERE true" counts as none.
 */
static bool
ag_scans_everything(Plan *plan)
{
	ListCell   *lc;

	if (plan == NULL)
		return false;
	switch (nodeTag(plan))
	{
		case T_SeqScan:
			return plan->qual == NIL;
		case T_Result:
			return plan->qual == NIL &&
				((Result *) plan)->resconstantqual == NULL &&
				plan->lefttree != NULL && ag_scans_everything(plan->lefttree);
		case T_Material:
			return plan->qual == NIL && ag_scans_everything(plan->lefttree);
		case T_NestLoop:
			/* DELETE ... USING t with no condition at all */
			return plan->qual == NIL && ((Join *) plan)->joinqual == NIL &&
				((NestLoop *) plan)->nestParams == NIL &&
				ag_scans_everything(plan->lefttree) &&
				ag_scans_everything(plan->righttree);
		case T_Append:
			{
				Append	   *append = (Append *) plan;

				if (ag_append_prunes(append) || append->appendplans == NIL)
					return false;
				foreach(lc, append->appendplans)
					if (!ag_scans_everything(lfirst(lc)))
						return false;
				return true;
			}
		default:
			return false;
	}
}

static char *ag_text_argument(Node *arg, ParamListInfo params);

/*
 * A sequence of agent_guard's moved by nextval() or setval() is a change
 * to agent_guard (its audit and request numbering); other sequences are
 * not judged.  A sequence computed as the statement runs cannot be told.
 */
static void
ag_note_sequence(AgPlanContext *context, Node *arg)
{
	Oid			seqid;

	if (!IsA(arg, Const) || ((Const *) arg)->constisnull ||
		((Const *) arg)->consttype != REGCLASSOID)
		return;
	seqid = DatumGetObjectId(((Const *) arg)->constvalue);
	if (OidIsValid(context->guard_schema) && get_rel_namespace(seqid) == context->guard_schema)
		context->pairs = ag_add_pair(context->pairs, "UPDATE", ag_relation_name(seqid), seqid);
}

static void
ag_note_function(AgPlanContext *context, Oid funcid, List *args)
{
	if (!OidIsValid(funcid))
		return;

	/* set_config() is a SET of the setting it names */
	if (funcid == F_SET_CONFIG && args != NIL)
	{
		char	   *setting = ag_text_argument(linitial(args), context->params);

		if (setting == NULL)
			context->pairs = ag_add_pair(context->pairs, "SET",
										 pstrdup(AG_COMPUTED_SETTING), InvalidOid);
		else
			context->pairs = ag_add_pair(context->pairs,
										 pg_strcasecmp(setting, "session_replication_role") == 0 ?
										 "SET SESSION_REPLICATION_ROLE" : "SET",
										 setting, InvalidOid);
	}

	/* agent_guard's notifications come from its writer only */
	if (funcid == F_PG_NOTIFY && args != NIL)
	{
		char	   *channel = ag_text_argument(linitial(args), context->params);

		if (channel && strncmp(channel, AG_CHANNEL_PREFIX, strlen(AG_CHANNEL_PREFIX)) == 0)
			context->pairs = ag_add_pair(context->pairs, "NOTIFY", channel, InvalidOid);
	}

	/* nextval() and setval() change the sequence they are given */
	if ((funcid == F_NEXTVAL || funcid == F_SETVAL_REGCLASS_INT8 ||
		 funcid == F_SETVAL_REGCLASS_INT8_BOOL) && args != NIL)
		ag_note_sequence(context, linitial(args));

	if (!context->want_functions &&
		get_func_namespace(funcid) != context->guard_schema)
		return;
	if (!list_member_oid(context->funcids, funcid))
		context->funcids = lappend_oid(context->funcids, funcid);
}

static bool ag_plan_walker(Node *node, AgPlanContext *context);

/*
 * An aggregate runs its support functions, whichever name it is called
 * by: an agent's own aggregate must not be a way to call a function an
 * EXECUTE policy denies.
 */
static void
ag_note_aggregate(AgPlanContext *context, Oid aggfnoid)
{
	HeapTuple	tup;
	Form_pg_aggregate agg;

	ag_note_function(context, aggfnoid, NIL);
	/* built-in aggregates use built-in support functions only */
	if (!context->want_functions || get_func_namespace(aggfnoid) == PG_CATALOG_NAMESPACE)
		return;
	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggfnoid));
	if (!HeapTupleIsValid(tup))
		return;				/* a window function, not an aggregate */
	agg = (Form_pg_aggregate) GETSTRUCT(tup);
	ag_note_function(context, agg->aggtransfn, NIL);
	ag_note_function(context, agg->aggfinalfn, NIL);
	ag_note_function(context, agg->aggcombinefn, NIL);
	ag_note_function(context, agg->aggserialfn, NIL);
	ag_note_function(context, agg->aggdeserialfn, NIL);
	ag_note_function(context, agg->aggmtransfn, NIL);
	ag_note_function(context, agg->aggminvtransfn, NIL);
	ag_note_function(context, agg->aggmfinalfn, NIL);
	ReleaseSysCache(tup);
}

/*
 * The text a function gets as its setting or channel name: a constant, or
 * a parameter whose value is fixed for this statement (extended protocol).
 * NULL when the name is computed as it runs (the pg_settings view, a
 * column, a PL/pgSQL variable).
 */
static char *
ag_text_argument(Node *arg, ParamListInfo params)
{
	/* a name built from constants is a constant, as the planner would fold it */
	if (!IsA(arg, Const) && !IsA(arg, Param))
		arg = eval_const_expressions(NULL, arg);
	if (IsA(arg, Const))
	{
		if (((Const *) arg)->constisnull)
			return pstrdup("(null)");
		return TextDatumGetCString(((Const *) arg)->constvalue);
	}
	if (IsA(arg, Param) && ((Param *) arg)->paramkind == PARAM_EXTERN &&
		params != NULL && params->paramFetch == NULL &&
		((Param *) arg)->paramid > 0 && ((Param *) arg)->paramid <= params->numParams)
	{
		ParamExternData *param = &params->params[((Param *) arg)->paramid - 1];

		if ((param->pflags & PARAM_FLAG_CONST) && param->ptype == TEXTOID)
		{
			if (param->isnull)
				return pstrdup("(null)");
			return TextDatumGetCString(param->value);
		}
	}
	return NULL;
}

/* Is this a plan node (which expression_tree_walker cannot walk)? */
static bool
ag_is_plan_node(Node *node)
{
	switch (nodeTag(node))
	{
		case T_Result:
		case T_ProjectSet:
		case T_ModifyTable:
		case T_Append:
		case T_MergeAppend:
		case T_RecursiveUnion:
		case T_BitmapAnd:
		case T_BitmapOr:
		case T_SeqScan:
		case T_SampleScan:
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapIndexScan:
		case T_BitmapHeapScan:
		case T_TidScan:
		case T_TidRangeScan:
		case T_SubqueryScan:
		case T_FunctionScan:
		case T_ValuesScan:
		case T_TableFuncScan:
		case T_CteScan:
		case T_NamedTuplestoreScan:
		case T_WorkTableScan:
		case T_ForeignScan:
		case T_CustomScan:
		case T_NestLoop:
		case T_MergeJoin:
		case T_HashJoin:
		case T_Material:
		case T_Memoize:
		case T_Sort:
		case T_IncrementalSort:
		case T_Group:
		case T_Agg:
		case T_WindowAgg:
		case T_Unique:
		case T_Gather:
		case T_GatherMerge:
		case T_Hash:
		case T_SetOp:
		case T_LockRows:
		case T_Limit:
			return true;
		default:
			return false;
	}
}

static bool
ag_walk_plan_list(List *plans, AgPlanContext *context)
{
	ListCell   *lc;

	foreach(lc, plans)
		ag_plan_walker(lfirst(lc), context);
	return false;
}

/*
 * Functions a statement calls without naming them: CHECK constraints of
 * relations and domains, and column defaults.  Walked only when EXECUTE
 * policies exist.
 */
static void
ag_walk_check_constraints(AgPlanContext *context, Oid relid, Oid typid)
{
	Relation	conrel;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tuple;
	List	   *exprs = NIL;
	ListCell   *lc;

	conrel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_constraint_conrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	ScanKeyInit(&key[1], Anum_pg_constraint_contypid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(typid));
	scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tuple);
		bool		isnull;
		Datum		conbin;

		if (con->contype != CONSTRAINT_CHECK)
			continue;
		conbin = heap_getattr(tuple, Anum_pg_constraint_conbin,
							  RelationGetDescr(conrel), &isnull);
		if (!isnull)
			exprs = lappend(exprs, stringToNode(TextDatumGetCString(conbin)));
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);

	foreach(lc, exprs)
		(void) ag_plan_walker(lfirst(lc), context);
}

static void
ag_walk_domain(AgPlanContext *context, Oid typid)
{
	int			depth = 0;

	while (OidIsValid(typid) && get_typtype(typid) == TYPTYPE_DOMAIN && depth++ < 32)
	{
		HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
		Oid			basetype;

		if (!HeapTupleIsValid(tup))
			return;
		basetype = ((Form_pg_type) GETSTRUCT(tup))->typbasetype;
		ReleaseSysCache(tup);
		ag_walk_check_constraints(context, InvalidOid, typid);
		typid = basetype;
	}
}

static void
ag_walk_relation_expressions(AgPlanContext *context, Oid relid)
{
	Relation	rel;
	TupleDesc	desc;
	int			i;

	ag_walk_check_constraints(context, relid, InvalidOid);
	rel = relation_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		Node	   *def;

		if (attr->attisdropped)
			continue;
		ag_walk_domain(context, attr->atttypid);
		if (attr->atthasdef && (def = build_column_default(rel, attr->attnum)) != NULL)
			(void) ag_plan_walker(def, context);
	}
	relation_close(rel, AccessShareLock);
}

static void
ag_note_modify_table(ModifyTable *mt, AgPlanContext *context)
{
	RangeTblEntry *rte = rt_fetch(mt->nominalRelation, context->pstmt->rtable);
	const char *command;
	ListCell   *lc;

	switch (mt->operation)
	{
		case CMD_INSERT:
			command = "INSERT";
			break;
		case CMD_UPDATE:
			command = ag_scans_everything(outerPlan(mt)) ? "UPDATE WITHOUT WHERE" : "UPDATE";
			break;
		case CMD_DELETE:
			command = ag_scans_everything(outerPlan(mt)) ? "DELETE WITHOUT WHERE" : "DELETE";
			break;
		case CMD_MERGE:
			command = "MERGE";
			break;
		default:
			command = "UPDATE";
			break;
	}
	context->pairs = ag_add_pair(context->pairs, command,
								 ag_relation_name(rte->relid), rte->relid);
	/* ON CONFLICT DO UPDATE updates existing rows: an UPDATE, capped like one */
	if (mt->operation == CMD_INSERT && mt->onConflictAction == ONCONFLICT_UPDATE)
		context->pairs = ag_add_pair(context->pairs, "UPDATE",
									 ag_relation_name(rte->relid), rte->relid);
	/* through an inheritance parent, its children (other schemas too) change */
	foreach(lc, mt->resultRelations)
	{
		Oid			relid = rt_fetch(lfirst_int(lc), context->pstmt->rtable)->relid;

		context->pairs = ag_add_pair(context->pairs, command, ag_relation_name(relid), relid);
	}
	context->writes = true;
	if (context->want_functions)
		ag_walk_relation_expressions(context, rte->relid);
}

/* Walk plan nodes and the expressions they hold. */
static bool
ag_plan_walker(Node *node, AgPlanContext *context)
{
	if (node == NULL)
		return false;
	check_stack_depth();

	switch (nodeTag(node))
	{
		case T_FuncExpr:
			ag_note_function(context, ((FuncExpr *) node)->funcid, ((FuncExpr *) node)->args);
			break;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			set_opfuncid((OpExpr *) node);
			ag_note_function(context, ((OpExpr *) node)->opfuncid, NIL);
			break;
		case T_ScalarArrayOpExpr:
			set_sa_opfuncid((ScalarArrayOpExpr *) node);
			ag_note_function(context, ((ScalarArrayOpExpr *) node)->opfuncid, NIL);
			break;
		case T_Aggref:
			ag_note_aggregate(context, ((Aggref *) node)->aggfnoid);
			break;
		case T_WindowFunc:
			ag_note_aggregate(context, ((WindowFunc *) node)->winfnoid);
			break;
		case T_CoerceToDomain:
			if (context->want_functions)
				ag_walk_domain(context, ((CoerceToDomain *) node)->resulttype);
			break;
		case T_Query:
			return query_tree_walker((Query *) node, ag_plan_walker, (void *) context, 0);
		default:
			break;
	}

	if (!ag_is_plan_node(node))
		return expression_tree_walker(node, ag_plan_walker, (void *) context);

	{
		Plan	   *plan = (Plan *) node;

		ag_plan_walker((Node *) plan->targetlist, context);
		ag_plan_walker((Node *) plan->qual, context);
		ag_plan_walker((Node *) plan->lefttree, context);
		ag_plan_walker((Node *) plan->righttree, context);

		switch (nodeTag(node))
		{
			case T_ModifyTable:
				{
					ModifyTable *mt = (ModifyTable *) node;

					ag_note_modify_table(mt, context);
					ag_plan_walker((Node *) mt->returningLists, context);
					ag_plan_walker((Node *) mt->onConflictSet, context);
					ag_plan_walker(mt->onConflictWhere, context);
					ag_plan_walker((Node *) mt->withCheckOptionLists, context);
					ag_plan_walker((Node *) mt->mergeActionLists, context);
					break;
				}
			case T_Result:
				ag_plan_walker(((Result *) node)->resconstantqual, context);
				break;
			case T_Append:
				ag_walk_plan_list(((Append *) node)->appendplans, context);
				break;
			case T_MergeAppend:
				ag_walk_plan_list(((MergeAppend *) node)->mergeplans, context);
				break;
			case T_BitmapAnd:
				ag_walk_plan_list(((BitmapAnd *) node)->bitmapplans, context);
				break;
			case T_BitmapOr:
				ag_walk_plan_list(((BitmapOr *) node)->bitmapplans, context);
				break;
			case T_SubqueryScan:
				ag_plan_walker((Node *) ((SubqueryScan *) node)->subplan, context);
				break;
			case T_CustomScan:
				ag_walk_plan_list(((CustomScan *) node)->custom_plans, context);
				ag_plan_walker((Node *) ((CustomScan *) node)->custom_exprs, context);
				break;
			case T_FunctionScan:
				ag_plan_walker((Node *) ((FunctionScan *) node)->functions, context);
				break;
			case T_TableFuncScan:
				ag_plan_walker((Node *) ((TableFuncScan *) node)->tablefunc, context);
				break;
			case T_ValuesScan:
				ag_plan_walker((Node *) ((ValuesScan *) node)->values_lists, context);
				break;
			case T_IndexScan:
				ag_plan_walker((Node *) ((IndexScan *) node)->indexqual, context);
				ag_plan_walker((Node *) ((IndexScan *) node)->indexorderby, context);
				break;
			case T_IndexOnlyScan:
				ag_plan_walker((Node *) ((IndexOnlyScan *) node)->indexqual, context);
				break;
			case T_BitmapIndexScan:
				ag_plan_walker((Node *) ((BitmapIndexScan *) node)->indexqual, context);
				break;
			case T_BitmapHeapScan:
				ag_plan_walker((Node *) ((BitmapHeapScan *) node)->bitmapqualorig, context);
				break;
			case T_TidScan:
				ag_plan_walker((Node *) ((TidScan *) node)->tidquals, context);
				break;
			case T_TidRangeScan:
				ag_plan_walker((Node *) ((TidRangeScan *) node)->tidrangequals, context);
				break;
			case T_NestLoop:
			case T_MergeJoin:
			case T_HashJoin:
				ag_plan_walker((Node *) ((Join *) node)->joinqual, context);
				if (IsA(node, MergeJoin))
					ag_plan_walker((Node *) ((MergeJoin *) node)->mergeclauses, context);
				if (IsA(node, HashJoin))
					ag_plan_walker((Node *) ((HashJoin *) node)->hashclauses, context);
				break;
			case T_Limit:
				ag_plan_walker(((Limit *) node)->limitOffset, context);
				ag_plan_walker(((Limit *) node)->limitCount, context);
				break;
			case T_WindowAgg:
				ag_plan_walker(((WindowAgg *) node)->startOffset, context);
				ag_plan_walker(((WindowAgg *) node)->endOffset, context);
				break;
			default:
				break;
		}
	}
	return false;
}

/*
 * Pairs for a statement the executor runs: its writes (from every
 * ModifyTable, including those in data-modifying CTEs), the relations it
 * only reads, and the functions it calls.
 */
List *
ag_classify_plan(PlannedStmt *pstmt, ParamListInfo params)
{
	AgPlanContext context;
	ListCell   *lc;
	bool		writes;

	context.pstmt = pstmt;
	context.params = params;
	context.pairs = NIL;
	context.funcids = NIL;
	context.want_functions = ag_want_functions();
	context.writes = false;
	context.guard_schema = ag_schema_oid();

	ag_plan_walker((Node *) pstmt->planTree, &context);
	foreach(lc, pstmt->subplans)
		ag_plan_walker(lfirst(lc), &context);

	writes = context.writes;
	foreach(lc, pstmt->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind != RTE_RELATION)
			continue;
		/* relations written to were named above */
		if (writes && rte->rellockmode != AccessShareLock)
			continue;
		context.pairs = ag_add_pair(context.pairs, "SELECT",
									ag_relation_name(rte->relid), rte->relid);
	}

	return ag_add_function_pairs(context.pairs, context.funcids);
}

/*
 * EXECUTE pairs for the functions a query calls, taken before planning:
 * the planner inlines SQL functions and runs immutable ones on constants,
 * so the plan no longer shows them, and they would already have run.
 */
List *
ag_classify_query_functions(Query *query, ParamListInfo params)
{
	AgPlanContext context;

	context.pstmt = NULL;
	context.params = params;
	context.pairs = NIL;
	context.funcids = NIL;
	context.want_functions = ag_want_functions();
	context.writes = false;
	context.guard_schema = ag_schema_oid();

	(void) query_tree_walker(query, ag_plan_walker, (void *) &context, 0);

	return ag_add_function_pairs(context.pairs, context.funcids);
}
