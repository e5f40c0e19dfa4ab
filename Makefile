# agent_guard: PGXS build
MODULE_big = agent_guard
OBJS = \
	src/agent_guard.o \
	src/agents.o \
	src/audit.o \
	src/breaker.o \
	src/classify.o \
	src/commands.o \
	src/guard.o \
	src/log_json.o \
	src/policy.o \
	src/queue.o \
	src/rowcap.o \
	src/shmem.o \
	src/sqlfuncs.o \
	src/trash.o \
	src/writer.o

EXTENSION = agent_guard
DATA = agent_guard--1.0.sql agent_guard--1.0--1.1.sql
PGFILEDESC = "agent_guard - guard rails for AI agent roles"

REGRESS_OPTS = --inputdir=. --load-extension=agent_guard
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --inputdir=. --load-extension=agent_guard
TAP_TESTS = 1

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every file shares the structures of these headers (shared memory included)
$(OBJS): src/agent_guard.h src/compat.h
