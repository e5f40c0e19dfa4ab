/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  agent_guard's shared memory: the write queue between backends and
 *	  the writer workers, sized once at server start.
 *
 * Each backend owns one queue slot (indexed by its PGPROC number) and has
 * at most one record in flight; record bytes live in a shared arena of
 * agent_guard.queue_size, allocated first-fit among the slots in use.
 *
 *-------------------------------------------------------------------------
 */
#include "agent_guard.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

AgShared   *ag_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
ag_shmem_size(void)
{
	Size		size = offsetof(AgShared, slots);

	size = add_size(size, mul_size(MaxBackends, sizeof(AgSlot)));
	size = add_size(size, (Size) ag_queue_size * 1024);
	return size;
}

static void
ag_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(ag_shmem_size());
	RequestNamedLWLockTranche("agent_guard", 1);
}

static void
ag_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ag_shared = ShmemInitStruct("agent_guard", ag_shmem_size(), &found);
	if (!found)
	{
		memset(ag_shared, 0, ag_shmem_size());
		ag_shared->lock = &(GetNamedLWLockTranche("agent_guard"))->lock;
		ConditionVariableInit(&ag_shared->done_cv);
		ConditionVariableInit(&ag_shared->decision_cv);
		ag_shared->nslots = MaxBackends;
		ag_shared->arena_size = (Size) ag_queue_size * 1024;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
ag_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ag_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ag_shmem_startup;
}

/* The arena that follows the slots. */
char *
ag_arena(void)
{
	return (char *) &ag_shared->slots[ag_shared->nslots];
}

static int
ag_compare_extents(const void *a, const void *b)
{
	const Size *x = a;
	const Size *y = b;

	return (x[0] > y[0]) - (x[0] < y[0]);
}

/*
 * Find room for length bytes in the arena, first fit between the records
 * in flight.  Caller holds the lock.  Returns false when there is none.
 */
bool
ag_arena_alloc(Size length, Size *offset)
{
	Size	   *extents = palloc(sizeof(Size) * 2 * (ag_shared->nslots + 1));
	int			n = 0;
	int			i;
	Size		cursor = 0;

	for (i = 0; i < ag_shared->nslots; i++)
	{
		AgSlot	   *slot = &ag_shared->slots[i];

		if (slot->state != AG_SLOT_FREE && slot->length > 0)
		{
			extents[2 * n] = slot->offset;
			extents[2 * n + 1] = slot->length;
			n++;
		}
	}
	qsort(extents, n, sizeof(Size) * 2, ag_compare_extents);
	for (i = 0; i < n; i++)
	{
		if (extents[2 * i] - cursor >= length)
			break;
		cursor = Max(cursor, extents[2 * i] + extents[2 * i + 1]);
	}
	pfree(extents);
	if (ag_shared->arena_size - cursor < length && i == n)
		return false;
	*offset = cursor;
	return true;
}
