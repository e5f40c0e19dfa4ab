#!/usr/bin/env bash
# The figure as SPEC §11 words it: instructions of a single-user backend
# (postgres --single) on point UPDATE + SELECT pairs, with the extension
# created and an agent registered, the workload run by a role that is not an
# agent; with and without agent_guard preloaded.  The same workload as
# ../shared/tools/callgrind-overhead, but the count per statement is taken
# from the difference between a short run (W pairs) and a long one (N pairs),
# so the one-time cost of loading the library (paid once by the postmaster of
# a real server, not per statement) is reported apart.
#
# Note: a single-user backend has no MyProc->roleId, so agent_guard never
# guards it; this measures the hooks' cost when they do not apply.  The cost
# in a real backend, agent sessions included, is bench/callgrind_backend.sh.
#
# usage: sudo bash bench/callgrind_single.sh [N=2000] [W=10]
# prints "CGS per_statement_none per_statement_guard once_none once_guard whole_ratio"
set -euo pipefail
N=${1:-2000}
W=${2:-10}
BIN=$(pg_config --bindir)
work=$(mktemp -d /tmp/agent_guard-cgs.XXXXXX)
chown postgres "$work"
trap 'rm -rf "$work"' EXIT

single() { # PRELOAD DATADIR, statements on stdin
	runuser -u postgres -- "$BIN/postgres" --single -D "$2" -c "shared_preload_libraries=$1" \
		-j postgres >/dev/null 2>&1
}
runuser -u postgres -- "$BIN/initdb" -D "$work/data" -A trust --no-sync >/dev/null
single "" "$work/data" <<'SQL'
CREATE TABLE accounts(aid int PRIMARY KEY, abalance int NOT NULL DEFAULT 0);
INSERT INTO accounts SELECT g FROM generate_series(1,100000) g;
CREATE ROLE human LOGIN; GRANT ALL ON accounts TO human;
CREATE ROLE bot LOGIN; GRANT ALL ON accounts TO bot;
SQL
single agent_guard "$work/data" <<'SQL'
CREATE EXTENSION agent_guard;
SELECT agent_guard.register_agent('bot');
SQL

workload() {
	local i a
	echo "SET SESSION AUTHORIZATION human;"
	for i in $(seq 1 "$1"); do
		a=$(( (i * 7919) % 100000 + 1 ))
		echo "UPDATE accounts SET abalance = abalance + 1 WHERE aid = $a;"
		echo "SELECT abalance FROM accounts WHERE aid = $a;"
	done
}
workload "$W" > "$work/short.sql"
workload "$N" > "$work/long.sql"
chown postgres "$work"/*.sql

ir() { # PRELOAD WORKLOAD : each run starts from a fresh copy of the same data directory
	rm -rf "$work/run" "$work/cg.out"
	cp -a "$work/data" "$work/run"
	runuser -u postgres -- valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
		"$BIN/postgres" --single -D "$work/run" -c "shared_preload_libraries=$1" -j postgres \
		< "$work/$2.sql" >/dev/null 2>&1
	awk '/^summary:/ {print $2}' "$work/cg.out"
}
none_short=$(ir "" short)
none_long=$(ir "" long)
guard_short=$(ir agent_guard short)
guard_long=$(ir agent_guard long)
stmts=$(( 2 * (N - W) ))
per_none=$(( (none_long - none_short) / stmts ))
per_guard=$(( (guard_long - guard_short) / stmts ))
# what a run costs besides its statements: start-up, loading the library
once_none=$(( none_short - 2 * W * per_none ))
once_guard=$(( guard_short - 2 * W * per_guard ))
whole=$(awk -v a="$guard_long" -v b="$none_long" 'BEGIN { printf "%.4f", a / b }')
echo "CGS $per_none $per_guard $once_none $once_guard $whole"
