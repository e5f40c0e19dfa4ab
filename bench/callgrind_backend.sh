#!/usr/bin/env bash
# Deterministic per-statement cost (callgrind instructions) of a real backend
# under a postmaster.  A single-user backend (postgres --single, as used by
# ../shared/tools/callgrind-overhead) has no MyProc->roleId, so agent_guard
# never guards it, whatever the role: that measures the preload only.
#
# Two clusters (no preload; agent_guard) are prepared by a normal postmaster,
# then started under callgrind; every backend writes its own count.  Each
# measured session connects to a fresh copy (CREATE DATABASE ... TEMPLATE) of
# a prepared database, so it starts from the same pages, and runs either a
# warm-up (W point UPDATE + SELECT pairs) or the warm-up followed by more
# pairs up to N.  (full - warm) / (2 (N - W)) is the steady-state cost of one
# statement: connection start, cache loads (policies read once) and the first
# statements cancel out.  Counted: PostgresMain and below, less secure_read
# (waiting for the client's next message, which depends on timing).
#
# Sessions: none (no preload), human (agent_guard, extension created, agents
# registered, the role is not an agent), agent10 (a registered agent, 10
# policies), agent10k (the same with BENCH_POLICIES policies, 10,000 by
# default, through set_policy() on distinct patterns: 3 exact to 1 wildcard,
# over 16 commands and groups); none_s, human_s, agent10_s: the same with
# point SELECTs only.
#
# usage: sudo bash bench/callgrind_backend.sh [N=1000] [W=20]
# prints "CG label warm_Ir full_Ir per_statement_Ir" lines; KEEP=1 keeps the
# callgrind files (for callgrind_annotate) and prints where they are.
set -euo pipefail
N=${1:-1000}
W=${2:-20}
POLICIES=${BENCH_POLICIES:-10000}
BIN=$(pg_config --bindir)
work=$(mktemp -d /tmp/agent_guard-cg.XXXXXX)
chown postgres "$work"
PMS=()
cleanup() {
	local d
	for d in "${PMS[@]:-}"; do
		[ -n "$d" ] && runuser -u postgres -- "$BIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true
	done
	if [ -n "${KEEP:-}" ]; then echo "# kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

declare -A PORT
make_cluster() { # NAME PRELOAD
	local name=$1 preload=$2 dir="$work/$1"
	PORT[$name]=$(free_port)
	runuser -u postgres -- "$BIN/initdb" -D "$dir" -A trust --no-sync >/dev/null
	mkdir -p "$work/$name.cg"; chown postgres "$work/$name.cg"
	cat >> "$dir/postgresql.conf" <<CONF
port = ${PORT[$name]}
listen_addresses = ''
unix_socket_directories = '$work'
shared_preload_libraries = '$preload'
autovacuum = off
fsync = off
synchronous_commit = on
CONF
	runuser -u postgres -- "$BIN/pg_ctl" -D "$dir" -l "$work/$name.setup.log" -w start >/dev/null
	PMS+=("$dir")
}

stop_cluster() { runuser -u postgres -- "$BIN/pg_ctl" -D "$work/$1" -m fast -w stop >/dev/null; }

# the postmaster under callgrind; its children inherit it
start_valgrind() { # NAME
	local name=$1 i
	# count only inside PostgresMain: a forked process otherwise inherits the
	# postmaster's count so far, which depends on what it did in between
	runuser -u postgres -- valgrind --tool=callgrind --toggle-collect=PostgresMain \
		--callgrind-out-file="$work/$name.cg/cg.%p" \
		"$BIN/postgres" -D "$work/$name" >"$work/$name.log" 2>&1 &
	for i in $(seq 1 300); do
		runuser -u postgres -- "$BIN/pg_isready" -h "$work" -p "${PORT[$name]}" -q && return 0
		sleep 1
	done
	echo "cluster $name did not start under valgrind" >&2
	exit 1
}

psql_at() { # NAME USER DB [psql args...]
	local name=$1 user=$2 db=$3; shift 3
	runuser -u postgres -- "$BIN/psql" -X -q -h "$work" -p "${PORT[$name]}" -U "$user" -d "$db" -v ON_ERROR_STOP=1 "$@"
}

# the workload of ../shared/tools/callgrind-overhead: point UPDATE + point SELECT pairs
workload() {
	local i a
	for i in $(seq 1 "$1"); do
		a=$(( (i * 7919) % 100000 + 1 ))
		echo "UPDATE accounts SET abalance = abalance + 1 WHERE aid = $a;"
		echo "SELECT abalance FROM accounts WHERE aid = $a;"
	done
}
# select-only: the same number of statements, all point SELECTs
workload_select() {
	local i a
	for i in $(seq 1 "$1"); do
		a=$(( (i * 7919) % 100000 + 1 ))
		echo "SELECT abalance FROM accounts WHERE aid = $a;"
		echo "SELECT abalance FROM accounts WHERE aid = $(( a % 99999 + 1 ));"
	done
}
workload "$W" > "$work/warm.sql"
workload "$N" > "$work/full.sql"
workload_select "$W" > "$work/warm_s.sql"
workload_select "$N" > "$work/full_s.sql"
chown postgres "$work"/*.sql

ACCOUNTS="CREATE TABLE accounts(aid int PRIMARY KEY, abalance int NOT NULL DEFAULT 0);
INSERT INTO accounts SELECT g FROM generate_series(1,100000) g;
VACUUM ANALYZE accounts;
GRANT SELECT, UPDATE ON accounts TO human, bot1, bot2;"
ROLES="CREATE ROLE human LOGIN; CREATE ROLE bot1 LOGIN; CREATE ROLE bot2 LOGIN;"

# policies through set_policy() up to TOTAL, on distinct patterns none of
# which matches accounts: the 6 installed defaults + 4 = 10
policies_sql() { # TOTAL
	cat <<SQL
SET client_min_messages = error;
SELECT agent_guard.set_policy('SELECT', 'reporting.daily_totals', 'allow');
SELECT agent_guard.set_policy('DELETE', 'public.jobs', 'require_approval');
SELECT agent_guard.set_policy('DROP TABLE', 'staging.*', 'allow');
SELECT agent_guard.set_policy('UPDATE', 'archive.*', 'deny');
SELECT count(agent_guard.set_policy(
	(ARRAY['SELECT','INSERT','UPDATE','DELETE','MERGE','TRUNCATE TABLE','DROP TABLE',
	       'ALTER TABLE','CREATE TABLE','CREATE INDEX','COPY','ALL','READ','WRITE','DDL',
	       'DESTRUCTIVE'])[g % 16 + 1],
	CASE WHEN g % 4 = 0 THEN
	          (ARRAY['app_' || g || '.*', 'public.tmp_' || g || '_*',
	                 '*.audit_' || g, 'shard_' || g || '.orders_?'])[(g / 4) % 4 + 1]
	     ELSE 'app_' || g || '.table_' || g END,
	(ARRAY['allow','deny','require_approval'])[g % 3 + 1]))
  FROM generate_series(1, $1 - (SELECT count(*) FROM agent_guard.policies)) g;
SQL
}

# prepared without valgrind
make_cluster plain ''
psql_at plain postgres postgres >/dev/null <<<"$ROLES CREATE DATABASE tmpl;"
psql_at plain postgres tmpl >/dev/null <<<"$ACCOUNTS"
stop_cluster plain

make_cluster guard agent_guard
psql_at guard postgres postgres >/dev/null <<SQL
$ROLES
CREATE EXTENSION agent_guard;
SET client_min_messages = error;
SELECT agent_guard.register_agent('bot1');
SELECT agent_guard.register_agent('bot2');
CREATE DATABASE tmpl10;
SQL
psql_at guard postgres tmpl10 >/dev/null <<<"$ACCOUNTS
CREATE EXTENSION agent_guard;
$(policies_sql 10)"
psql_at guard postgres postgres -c "CREATE DATABASE tmpl10k TEMPLATE tmpl10"
psql_at guard postgres tmpl10k >/dev/null <<<"$(policies_sql "$POLICIES")"
for t in tmpl10 tmpl10k; do
	echo "# $t: $(psql_at guard postgres "$t" -At -c "SELECT count(*) FROM agent_guard.policies") policies" >&2
done
stop_cluster guard

# Pruning depends on timing: a page is pruned only when no snapshot of the
# database still needs its old row versions, and the agent_guard writer
# (storing the agent's audit rows) runs transactions in the same database.
# A session that holds a snapshot throughout (a running pg_sleep) keeps every
# measured session from pruning, whatever runs beside it.
hold_horizon() { # CLUSTER DB
	local i
	psql_at "$1" postgres "$2" -c "SELECT pg_sleep(86400) /* holder */" >/dev/null 2>&1 &
	for i in $(seq 1 600); do
		[ "$(psql_at "$1" postgres postgres -At -c "SELECT count(*) FROM pg_stat_activity
			WHERE datname = '$2' AND query LIKE '%/* holder */' AND backend_xmin IS NOT NULL")" = 1 ] && return 0
		sleep 0.2
	done
	echo "no snapshot holder in $2" >&2
	exit 1
}
release_horizon() { # CLUSTER DB
	psql_at "$1" postgres postgres -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = '$2' AND query LIKE '%/* holder */' AND pid <> pg_backend_pid()" >/dev/null
}

# session LABEL CLUSTER USER TEMPLATE [SUFFIX] : warm-up and full sessions,
# each on a fresh copy; SUFFIX _s runs the select-only workload
declare -A WARM FULL
session() {
	local label=$1 name=$2 user=$3 tmpl=$4 sfx=${5:-} kind db pid
	for kind in warm full; do
		db="s_${label}_$kind"
		psql_at "$name" postgres postgres -c "CREATE DATABASE $db TEMPLATE $tmpl STRATEGY FILE_COPY"
		hold_horizon "$name" "$db"
		psql_at "$name" "$user" "$db" -At -c "SELECT pg_backend_pid()" -f "$work/$kind$sfx.sql" > "$work/$label.$kind.out" 2>"$work/$label.$kind.err" ||
			{ echo "session $label/$kind failed:" >&2; cat "$work/$label.$kind.err" >&2; exit 1; }
		release_horizon "$name" "$db"
		pid=$(head -1 "$work/$label.$kind.out")
		echo "# $(date +%T) $label $kind pid $pid" >&2
		echo "$label $kind $pid" >> "$work/sessions.$name"
	done
}

# counts are written when a backend exits; read them after the cluster stops
collect() { # NAME
	local name=$1 label kind pid ir
	stop_cluster "$name"
	while read -r label kind pid; do
		f="$work/$name.cg/cg.$pid"
		# less what the backend spends reading the client's next message: how
		# often it finds the socket empty and waits depends on timing (about
		# +-50 instructions per statement), and it is no cost of a statement
		ir=$(( $(awk '/^summary:/ {print $2}' "$f") - $(callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$f" 2>/dev/null |
			awk '/:secure_read / { gsub(",", "", $1); n += $1 } END { print n + 0 }') ))
		if [ "$kind" = warm ]; then WARM[$label]=$ir; else FULL[$label]=$ir; fi
		if [ -n "${KEEP:-}" ]; then echo "# $label $kind: $work/$name.cg/cg.$pid" >&2; fi
	done < "$work/sessions.$name"
}

start_valgrind plain
start_valgrind guard
# the two clusters run side by side (counts do not depend on timing)
{
	session none plain human tmpl
	session none_s plain human tmpl _s
} &
p1=$!
{
	session human guard human tmpl10
	session agent10 guard bot1 tmpl10
	session agent10k guard bot1 tmpl10k
	session human_s guard human tmpl10 _s
	session agent10_s guard bot1 tmpl10 _s
} &
p2=$!
wait $p1
wait $p2
collect plain
collect guard

stmts=$(( 2 * (N - W) ))
for label in none human agent10 agent10k none_s human_s agent10_s; do
	echo "CG $label ${WARM[$label]} ${FULL[$label]} $(( (FULL[$label] - WARM[$label]) / stmts ))"
done
