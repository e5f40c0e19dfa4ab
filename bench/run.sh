#!/usr/bin/env bash
# The whole benchmark of SPEC §11 in one command; prints one table.
#
#   sudo bash bench/run.sh                 # full run (about 11 minutes on 2 cores)
#   sudo BENCH_QUICK=1 bash bench/run.sh   # smoke run (about 5 minutes)
#
# It uses the installed agent_guard (make install first) and pgaudit, and
# starts throw-away clusters owned by postgres (bench/lib.sh):
#
# 1. pgbench, TPC-B and select-only (-S), configurations alternating round by
#    round (the order rotates each round), medians and ratios to (a):
#      a  none         no extension loaded
#      b  human        agent_guard loaded and created, agents registered; the
#                      pgbench role is not an agent
#      c  agent        the pgbench role is a registered agent, default policies
#                      (its writes are audited: one audit_log row each)
#      d  pgaudit      pgaudit loaded, pgaudit.log = 'write,ddl' for the role
#      e  agent10k     as c, with 10,000 policies in the database
# 2. callgrind: instructions per statement of a real backend (point UPDATE +
#    SELECT pairs; SELECTs only), none / non-agent / agent with 10 and 10,000
#    policies
#    (bench/callgrind_backend.sh; deterministic, unlike the pgbench figures),
#    and the single-user figure as SPEC §11 words it (bench/callgrind_single.sh).
# 3. refusal burst: 20 concurrent agent sessions, 10,000 refused statements;
#    throughput, and exactly one audit row, one log line, one request each.
# 4. parking latency p50/p99 (bench/park_latency.sh).
#
# Settings (environment): BENCH_ROUNDS (5), BENCH_SECONDS (7 per pgbench run),
# BENCH_CLIENTS (4), BENCH_JOBS (2), BENCH_SCALE (10), BENCH_CG_N (600), BENCH_CGS_N (2000),
# BENCH_BURST (10000), BENCH_BURST_SESSIONS (20), BENCH_PARKS (1000),
# BENCH_POLICIES (10000), BENCH_SKIP (space-separated: pgbench callgrind burst park).
# The pgbench clusters run with synchronous_commit = off and autovacuum = off,
# so the figures measure CPU cost, not fsync or vacuum timing; the burst and
# parking latency run with the default settings (synchronous_commit = on).
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" != 0 ]; then
	echo "run as root (clusters are started as postgres with runuser)" >&2
	exit 1
fi
# on a clean clone: what is missing (PostgreSQL 15, pgaudit, valgrind), then
# build and install the extension from this tree
bash "$here/../.ci/setup"
if ! command -v valgrind >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
make -s -C "$here/.." >/dev/null && make -s -C "$here/.." install >/dev/null
source "$here/lib.sh"

if [ -n "${BENCH_QUICK:-}" ]; then
	: "${BENCH_ROUNDS:=2}" "${BENCH_SECONDS:=3}" "${BENCH_SCALE:=2}" "${BENCH_CG_N:=200}" "${BENCH_CGS_N:=500}"
	: "${BENCH_BURST:=2000}" "${BENCH_PARKS:=100}" "${BENCH_POLICIES:=10000}"
fi
ROUNDS=${BENCH_ROUNDS:-5}
SECONDS_PER_RUN=${BENCH_SECONDS:-7}
CLIENTS=${BENCH_CLIENTS:-4}
JOBS=${BENCH_JOBS:-2}
SCALE=${BENCH_SCALE:-10}
CG_N=${BENCH_CG_N:-600}
CGS_N=${BENCH_CGS_N:-2000}
BURST=${BENCH_BURST:-10000}
BURST_SESSIONS=${BENCH_BURST_SESSIONS:-20}
PARKS=${BENCH_PARKS:-1000}
POLICIES=${BENCH_POLICIES:-10000}
SKIP=" ${BENCH_SKIP:-} "
skip() { [[ "$SKIP" == *" $1 "* ]]; }

RESULTS="$BENCH_DIR/results"	# "key value" lines, read back for the table
: > "$RESULTS"
note() { echo "# $(date -u +%T) $*" >&2; }
result() { echo "$1 $2" >> "$RESULTS"; }
get() { awk -v k="$1" '$1 == k {print $2; exit}' "$RESULTS"; }

# the figures are those of the installed library: say which, and whether it
# was replaced (make install) while the benchmark ran
LIBRARY="$(pg_config --pkglibdir)/agent_guard.so"
lib_id() { md5sum "$LIBRARY" | cut -c1-12; }
LIB_ID=$(lib_id)
result library "$LIB_ID"
result library_time "$(date -u -r "$LIBRARY" +%Y-%m-%dT%H:%M:%SZ)"
check_library() { # PHASE
	if [ "$(lib_id)" != "$LIB_ID" ]; then
		note "WARNING: $LIBRARY changed during $1"
		result library_changed "$1"
		LIB_ID=$(lib_id)
	fi
}

COMMON_CONF=(
	"shared_buffers = 256MB"
	"max_connections = 100"
	"synchronous_commit = off"
	"autovacuum = off"
	"max_wal_size = 8GB"
	"checkpoint_timeout = 30min"
	"log_statement = none"
)

# a pgbench database in the current cluster: tables owned by postgres (pgbench
# -i truncates and drops, so never as an agent), usable by the bench roles
init_pgbench() { # DB ROLES...
	local db=$1; shift
	sql -c "CREATE DATABASE $db"
	as_pg "$BIN/pgbench" -q -i -s "$SCALE" "$db" >/dev/null 2>&1
	local role
	for role in "$@"; do
		sql -d "$db" -c "GRANT SELECT, INSERT, UPDATE, DELETE ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO $role"
	done
	sql -d "$db" -c "VACUUM ANALYZE"
}

# BENCH_POLICIES policies through agent_guard.set_policy() on distinct
# patterns: 16 commands and groups, 3 exact patterns to 1 wildcard pattern
# (schema.*, prefix_*, *.suffix, name_?), none of them matching pgbench's
# tables; added to the 6 installed defaults
add_policies() { # DB TOTAL
	local db=$1 total=$2
	sql -d "$db" -v total="$total" <<'SQL'
SET client_min_messages = error;
SELECT count(agent_guard.set_policy(
	(ARRAY['SELECT','INSERT','UPDATE','DELETE','MERGE','TRUNCATE TABLE','DROP TABLE',
	       'ALTER TABLE','CREATE TABLE','CREATE INDEX','COPY','ALL','READ','WRITE','DDL',
	       'DESTRUCTIVE'])[g % 16 + 1],
	CASE WHEN g % 4 = 0 THEN
	          (ARRAY['app_' || g || '.*', 'public.tmp_' || g || '_*',
	                 '*.audit_' || g, 'shard_' || g || '.orders_?'])[(g / 4) % 4 + 1]
	     ELSE 'app_' || g || '.table_' || g END,
	(ARRAY['allow','deny','require_approval'])[g % 3 + 1]))
  FROM generate_series(1, :total - (SELECT count(*) FROM agent_guard.policies)) g;
SQL
}

############################################################################
# 1. pgbench
############################################################################
declare -A CPORT CDB CROLE CDIR
CONFIGS=(none human agent pgaudit agent10k)
if [ ! -e "$(pg_config --pkglibdir)/pgaudit.so" ]; then
	echo "pgaudit is not installed (Debian: postgresql-15-pgaudit): configuration d is left out" >&2
	CONFIGS=(none human agent agent10k)
fi
if ! skip pgbench; then
	note "pgbench: setting up clusters (scale $SCALE)"
	start_cluster plain "${COMMON_CONF[@]}"
	sql -c "CREATE ROLE bench_user LOGIN"
	init_pgbench bench bench_user
	CPORT[none]=$PGPORT; CDB[none]=bench; CROLE[none]=bench_user; CDIR[none]=$BENCH_DIR/plain

	start_cluster guard "${COMMON_CONF[@]}" "shared_preload_libraries = 'agent_guard'"
	sql -c "CREATE ROLE bench_user LOGIN; CREATE ROLE bench_agent LOGIN"
	sql -c "CREATE DATABASE bench"
	sql -d bench -c "CREATE EXTENSION agent_guard"
	sql -d bench -c "SET client_min_messages = error; SELECT agent_guard.register_agent('bench_agent')" >/dev/null
	sql -c "DROP DATABASE bench"
	# the database: extension first, then the pgbench tables (as postgres)
	sql -c "CREATE DATABASE bench"
	sql -d bench -c "CREATE EXTENSION agent_guard"
	as_pg "$BIN/pgbench" -q -i -s "$SCALE" bench >/dev/null 2>&1
	sql -d bench -c "GRANT SELECT, INSERT, UPDATE, DELETE ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO bench_user, bench_agent"
	sql -d bench -c "VACUUM ANALYZE"
	sql -c "CREATE DATABASE bench10k TEMPLATE bench"
	add_policies bench10k "$POLICIES" >/dev/null
	result policies_default "$(sql -d bench -tAc 'SELECT count(*) FROM agent_guard.policies')"
	result policies_many "$(sql -d bench10k -tAc 'SELECT count(*) FROM agent_guard.policies')"
	sql -d bench10k -c "VACUUM ANALYZE"
	CPORT[human]=$PGPORT; CDB[human]=bench; CROLE[human]=bench_user; CDIR[human]=$BENCH_DIR/guard
	CPORT[agent]=$PGPORT; CDB[agent]=bench; CROLE[agent]=bench_agent; CDIR[agent]=$BENCH_DIR/guard
	CPORT[agent10k]=$PGPORT; CDB[agent10k]=bench10k; CROLE[agent10k]=bench_agent; CDIR[agent10k]=$BENCH_DIR/guard
	GUARD_PORT=$PGPORT

	if [[ " ${CONFIGS[*]} " == *" pgaudit "* ]]; then
	start_cluster pgaudit "${COMMON_CONF[@]}" "shared_preload_libraries = 'pgaudit'"
	sql -c "CREATE ROLE bench_user LOGIN"
	sql -c "ALTER ROLE bench_user SET pgaudit.log = 'write,ddl'"
	sql -c "CREATE DATABASE bench"
	sql -d bench -c "CREATE EXTENSION pgaudit"
	as_pg "$BIN/pgbench" -q -i -s "$SCALE" bench >/dev/null 2>&1
	sql -d bench -c "GRANT SELECT, INSERT, UPDATE, DELETE ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO bench_user"
	sql -d bench -c "VACUUM ANALYZE"
	CPORT[pgaudit]=$PGPORT; CDB[pgaudit]=bench; CROLE[pgaudit]=bench_user; CDIR[pgaudit]=$BENCH_DIR/pgaudit
	fi

	audit_before=$(PGPORT=$GUARD_PORT sql -d bench -tAc "SELECT count(*) FROM agent_guard.audit_log")
	pgaudit_log="$BENCH_DIR/pgaudit/server.log"
	pgaudit_lines() { local n; n=$(grep -c 'AUDIT: SESSION' "$pgaudit_log" 2>/dev/null) || true; echo "${n:-0}"; }
	pgaudit_lines_before=$(pgaudit_lines)

	# CPU time (clock ticks) used so far by a cluster: the postmaster, the
	# children it has reaped (backends, writers) and its live children
	server_ticks() { # DATADIR
		local pm
		pm=$(head -1 "$1/postmaster.pid")
		# (processes come and go while we read: cat's complaints do not matter)
		{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" '
			{
				pid = $1
				match($0, /\) /)
				split(substr($0, RSTART + 2), f, " ")	# f[1] is field 3 (state)
				if (pid == pm) t += f[12] + f[13] + f[14] + f[15]	# utime stime cutime cstime
				else if (f[2] == pm) t += f[12] + f[13]
			}
			END { print t }'
	}
	# one pgbench run; prints "tps server_cpu_us_per_transaction" (0 0 when a client aborted)
	run_pgbench() { # CONFIG MODE(tpcb|select)
		local c=$1 mode=$2 flag="" out t0 t1 n
		[ "$mode" = select ] && flag=-S
		t0=$(server_ticks "${CDIR[$c]}")
		out=$(PGPORT=${CPORT[$c]} as_pg "$BIN/pgbench" -n $flag -c "$CLIENTS" -j "$JOBS" \
			-T "$SECONDS_PER_RUN" -U "${CROLE[$c]}" "${CDB[$c]}" 2>&1) || true
		sleep 0.2	# let the postmaster reap the backends
		t1=$(server_ticks "${CDIR[$c]}")
		if grep -q 'aborted\|ERROR' <<<"$out"; then
			echo "pgbench $c $mode failed:" >&2
			grep -m3 'aborted\|ERROR' <<<"$out" >&2
			echo "0 0"
			return
		fi
		n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
		echo "$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")" \
			"$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="${n:-0}" 'BEGIN { printf "%.1f", d * 1e6 / hz / (n > 0 ? n : 1) }')"
	}
	note "pgbench: $ROUNDS rounds x ${#CONFIGS[@]} configurations x (TPC-B, select-only) x ${SECONDS_PER_RUN}s, $CLIENTS clients"
	for round in $(seq 1 "$ROUNDS"); do
		# rotate the order, so no configuration always runs first or last
		order=()
		for i in $(seq 0 $((${#CONFIGS[@]} - 1))); do
			order+=("${CONFIGS[$(( (i + round - 1) % ${#CONFIGS[@]} ))]}")
		done
		for c in "${order[@]}"; do
			for mode in tpcb select; do
				read -r tps cpu < <(run_pgbench "$c" "$mode")
				echo "$c $mode $round $tps $cpu" >> "$BENCH_DIR/tps"
				note "round $round $c $mode: $tps tps, server CPU $cpu us/transaction"
			done
		done
	done
	python3 - "$BENCH_DIR/tps" >> "$RESULTS" <<'PY'
import sys, statistics
runs = {}
cpus = {}
for line in open(sys.argv[1]):
    c, mode, _, tps, cpu = line.split()
    runs.setdefault((c, mode), []).append(float(tps))
    cpus.setdefault((c, mode), []).append(float(cpu))
for (c, mode), v in runs.items():
    print(f"tps_{c}_{mode} {statistics.median(v):.1f}")
    print(f"spread_{c}_{mode} {min(v):.0f}-{max(v):.0f}")
    print(f"cpu_{c}_{mode} {statistics.median(cpus[(c, mode)]):.1f}")
PY
	result audit_rows_agent_runs $(( $(PGPORT=$GUARD_PORT sql -d bench -tAc "SELECT count(*) FROM agent_guard.audit_log") - audit_before ))
	result pgaudit_lines $(( $(pgaudit_lines) - pgaudit_lines_before ))
	stop_all_clusters
	check_library pgbench
fi

############################################################################
# 2. callgrind: instructions per statement
############################################################################
if ! skip callgrind; then
	note "callgrind: $CG_N point UPDATE + SELECT pairs per session"
	BENCH_POLICIES=$POLICIES bash "$here/callgrind_backend.sh" "$CG_N" > "$BENCH_DIR/cg.out" 2> "$BENCH_DIR/cg.err" ||
		{ cat "$BENCH_DIR/cg.err" >&2; echo "callgrind failed" >&2; }
	# "CG label warm_Ir full_Ir per_statement_Ir"
	while read -r _ label _ _ per; do
		result "cg_$label" "$per"
	done < <(grep '^CG ' "$BENCH_DIR/cg.out")
	note "callgrind: single-user backend, $CGS_N pairs"
	bash "$here/callgrind_single.sh" "$CGS_N" > "$BENCH_DIR/cgs.out" 2>&1 ||
		{ cat "$BENCH_DIR/cgs.out" >&2; echo "callgrind (single-user) failed" >&2; }
	read -r _ a b c d e < <(grep '^CGS ' "$BENCH_DIR/cgs.out" || echo "CGS")
	result cgs_none "${a:-}"; result cgs_guard "${b:-}"
	result cgs_once "$(( ${d:-0} - ${c:-0} ))"; result cgs_whole "${e:-}"
	check_library callgrind
fi

############################################################################
# 3. refusal burst
############################################################################
if ! skip burst; then
	note "burst: $BURST refused statements from $BURST_SESSIONS agent sessions"
	# default durability here (synchronous_commit = on): refusals are stored
	# and committed by the writer before the agent sees its error
	start_cluster burst "shared_preload_libraries = 'agent_guard'" "max_connections = 100" \
		"log_statement = none" "agent_guard.breaker_threshold = 1000000"
	sql >/dev/null <<'SQL'
CREATE EXTENSION agent_guard;
CREATE ROLE bench_burst LOGIN;
CREATE TABLE public.t (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO public.t SELECT g, 'row ' || g FROM generate_series(1, 100) g;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.t TO bench_burst;
SET client_min_messages = error;
SELECT agent_guard.register_agent('bench_burst');
SELECT agent_guard.set_policy('TRUNCATE TABLE', 'public.t', 'deny');
SELECT agent_guard.set_policy('INSERT', 'public.t', 'deny');
SQL
	data_sql="SELECT count(*) || ' ' || md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM public.t"
	data_before=$(sql -tAc "$data_sql")
	per=$(( BURST / BURST_SESSIONS ))
	# each statement carries its tag (session, number) in a comment; 2 in 5
	# are denied INSERTs, 2 in 5 denied TRUNCATEs, 1 in 5 parked (DELETE
	# without WHERE: require_approval under the default policies)
	for s in $(seq 1 "$BURST_SESSIONS"); do
		for q in $(seq 1 "$per"); do
			tag=$(printf 's%02dq%05d' "$s" "$q")
			case $(( q % 5 )) in
				0) echo "DELETE FROM /* $tag */ public.t;" ;;
				1|3) echo "INSERT INTO /* $tag */ public.t VALUES (-1, '$tag');" ;;
				*) echo "TRUNCATE /* $tag */ public.t;" ;;
			esac
		done > "$BENCH_DIR/burst.$s.sql"
	done
	chown postgres "$BENCH_DIR"/burst.*.sql
	t0=$(date +%s.%N)
	pids=()
	for s in $(seq 1 "$BURST_SESSIONS"); do
		as_pg "$BIN/psql" -X -q -U bench_burst -f "$BENCH_DIR/burst.$s.sql" \
			> /dev/null 2> "$BENCH_DIR/burst.$s.err" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || true; done
	t1=$(date +%s.%N)
	total=$(( per * BURST_SESSIONS ))
	result burst_statements "$total"
	result burst_seconds "$(python3 -c "print(f'{$t1 - $t0:.2f}')")"
	result burst_per_second "$(python3 -c "print(f'{$total / ($t1 - $t0):.0f}')")"
	result burst_errors "$(cat "$BENCH_DIR"/burst.*.err | grep -c 'ERROR:' || true)"
	# exactly once: audit rows, requests and log lines, by tag
	sql -tAc "COPY (SELECT substring(statement from '/\* (s\d\dq\d{5}) \*/'), decision
	                 FROM agent_guard.audit_log WHERE statement ~ '/\* s\d\dq\d{5} \*/')
	          TO STDOUT" > "$BENCH_DIR/burst.audit"
	sql -tAc "COPY (SELECT substring(statement from '/\* (s\d\dq\d{5}) \*/')
	                 FROM agent_guard.requests WHERE statement ~ '/\* s\d\dq\d{5} \*/')
	          TO STDOUT" > "$BENCH_DIR/burst.requests"
	grep -o 'agent_guard: {.*' "$BENCH_DIR/burst/server.log" | sed 's/^agent_guard: //' > "$BENCH_DIR/burst.log" || true
	python3 - "$BENCH_DIR" "$BURST_SESSIONS" "$per" >> "$RESULTS" <<'PY'
import sys, json, re, collections
d, sessions, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
want = {}
for s in range(1, sessions + 1):
    for q in range(1, per + 1):
        want[f"s{s:02d}q{q:05d}"] = "parked" if q % 5 == 0 else "denied"
audit = collections.Counter()
wrong = 0
for line in open(f"{d}/burst.audit"):
    tag, decision = line.rstrip("\n").split("\t")
    audit[tag] += 1
    if want.get(tag) != decision:
        wrong += 1
requests = collections.Counter(l.strip() for l in open(f"{d}/burst.requests"))
logs = collections.Counter()
for line in open(f"{d}/burst.log"):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    m = re.search(r"/\* (s\d\dq\d{5}) \*/", json.dumps(rec))
    if m and rec.get("decision") in ("denied", "parked"):
        logs[m.group(1)] += 1
parked = [t for t, v in want.items() if v == "parked"]
print("burst_audit_once", sum(1 for t in want if audit[t] == 1))
print("burst_audit_rows", sum(audit.values()))
print("burst_audit_wrong_decision", wrong)
print("burst_requests_once", sum(1 for t in parked if requests[t] == 1))
print("burst_parked", len(parked))
print("burst_log_once", sum(1 for t in want if logs[t] == 1))
print("burst_log_lines", sum(logs.values()))
PY
	result burst_data_intact "$([ "$(sql -tAc "$data_sql")" = "$data_before" ] && echo yes || echo NO)"
	stop_all_clusters
	check_library burst
fi

############################################################################
# 4. parking latency
############################################################################
if ! skip park; then
	note "parking latency: $PARKS parks"
	bash "$here/park_latency.sh" "$PARKS" > "$BENCH_DIR/park.out" 2>&1 || cat "$BENCH_DIR/park.out" >&2
	while read -r label _ p50 _ p99 _; do
		result "park_${label}_p50" "${p50#p50=}"
		result "park_${label}_p99" "${p99#p99=}"
	done < <(sed -n 's/^\(allowed\|denied\|parked\) *n=[0-9]* *\(p50=\) *\([0-9.]*\) ms *\(p99=\) *\([0-9.]*\) ms.*/\1 x p50=\3 x p99=\5 x/p' "$BENCH_DIR/park.out")
	check_library park
fi

############################################################################
# the table
############################################################################
python3 - "$RESULTS" <<PY
import sys
r = {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition(" ")
    r[k] = v
def f(k):
    try: return float(r[k])
    except (KeyError, ValueError): return None
def ratio(a, b):
    a, b = f(a), f(b)
    return f"{a / b:.4f}" if a is not None and b else "-"
def met(ok):
    return "-" if ok is None else ("met" if ok else "MISSED")
print()
print("agent_guard benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, "
      "$(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), "
      "$(pg_config --version), Debian $(cat /etc/debian_version 2>/dev/null)")
print(f"installed agent_guard.so md5 {r.get('library', '?')}... ({r.get('library_time', '?')}); "
      "source tree $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)")
if "library_changed" in r:
    print(f"WARNING: the installed library was replaced during the run (noticed after: {r['library_changed']}); "
          "figures of different phases may come from different versions")
print("pgbench: scale $SCALE, $CLIENTS clients, $JOBS threads, $ROUNDS rounds x ${SECONDS_PER_RUN}s, "
      "medians (min-max); ratio = tps / tps(none)")
if f("tps_none_tpcb"):
    print("  server CPU = CPU time of all server processes (backends, writer, ...) per transaction, us")
    print(f"  {'config':<10} {'TPC-B tps':>10} {'ratio':>7} {'(min-max)':>13} {'CPU':>7} {'ratio':>7}"
          f"   {'select tps':>10} {'ratio':>7} {'(min-max)':>13} {'CPU':>7} {'ratio':>7}")
    for c in ["none", "human", "agent", "pgaudit", "agent10k"]:
        line = f"  {c:<10}"
        for m in ["tpcb", "select"]:
            line += (f" {r.get('tps_'+c+'_'+m,'-'):>10} {ratio('tps_'+c+'_'+m,'tps_none_'+m):>7} {r.get('spread_'+c+'_'+m,''):>13}"
                     f" {r.get('cpu_'+c+'_'+m,'-'):>7} {ratio('cpu_'+c+'_'+m,'cpu_none_'+m):>7}  ")
        print(line)
    print(f"  audit_log rows written by the agent runs: {r.get('audit_rows_agent_runs','-')}; "
          f"pgaudit log lines: {r.get('pgaudit_lines','-')}; policies: {r.get('policies_default','-')} vs {r.get('policies_many','-')}")
if f("cg_none"):
    print("callgrind, instructions per statement (real backend, point UPDATE/SELECT pairs, N=$CG_N):")
    for c in ["none", "human", "agent10", "agent10k"]:
        print(f"  {c:<10} {r.get('cg_'+c,'-'):>10} {ratio('cg_'+c,'cg_none'):>8}   (UPDATE + SELECT pairs)")
    for c in ["none_s", "human_s", "agent10_s"]:
        print(f"  {c:<10} {r.get('cg_'+c,'-'):>10} {ratio('cg_'+c,'cg_none_s'):>8}   (SELECT only)")
    print(f"  policies 10k/10: {ratio('cg_agent10k','cg_agent10')}")
if f("cgs_none"):
    print(f"callgrind, single-user backend (SPEC's wording; the guard never applies there), N=$CGS_N pairs:")
    print(f"  per statement: none {r['cgs_none']}, agent_guard {r['cgs_guard']}, ratio {ratio('cgs_guard','cgs_none')}; "
          f"loading the library once: +{r.get('cgs_once')} instructions; whole process: ratio {r.get('cgs_whole')}")
if f("burst_statements"):
    print(f"burst: {r['burst_statements']} refused statements, $BURST_SESSIONS sessions, {r['burst_seconds']} s, "
          f"{r['burst_per_second']} refusals/s; errors seen {r.get('burst_errors')}; audit rows exactly once "
          f"{r.get('burst_audit_once')}/{r['burst_statements']} (rows {r.get('burst_audit_rows')}, "
          f"wrong decision {r.get('burst_audit_wrong_decision')}); log lines exactly once "
          f"{r.get('burst_log_once')}/{r['burst_statements']}; requests exactly once "
          f"{r.get('burst_requests_once')}/{r.get('burst_parked')}; data intact {r.get('burst_data_intact')}")
if f("park_parked_p99") is not None:
    print(f"parking latency ms: parked p50 {r['park_parked_p50']} p99 {r['park_parked_p99']}; "
          f"allowed p50 {r.get('park_allowed_p50')} p99 {r.get('park_allowed_p99')}; "
          f"denied p50 {r.get('park_denied_p50')} p99 {r.get('park_denied_p99')}")
print()
print("SPEC 11 targets:")
def row(name, value, ok):
    print(f"  {name:<58} {value:<26} {met(ok)}")
def lt(k, b, limit):
    a, b = f(k), f(b)
    return None if a is None or not b else a / b
def tpsrow(name, c, m, limit):
    v, cpu = lt(f"tps_{c}_{m}", f"tps_none_{m}", 0), lt(f"cpu_{c}_{m}", f"cpu_none_{m}", 0)
    row(name, "-" if v is None else f"{v:.4f} (CPU/txn {cpu:.3f})" if cpu else f"{v:.4f}",
        None if v is None else v >= limit)
tpsrow("non-agent TPC-B within 1% of none", "human", "tpcb", 0.99)
tpsrow("non-agent select-only within 1% of none", "human", "select", 0.99)
v = lt("cg_human", "cg_none", 0)
row("non-agent instructions/statement <= +0.5% (callgrind)", "-" if v is None else f"{v:.4f}", None if v is None else v <= 1.005)
v = lt("cg_human_s", "cg_none_s", 0)
row("  the same, SELECT only", "-" if v is None else f"{v:.4f}", None if v is None else v <= 1.005)
v = lt("cgs_guard", "cgs_none", 0)
row("  the same, single-user backend (SPEC's wording)", "-" if v is None else f"{v:.4f}", None if v is None else v <= 1.005)
tpsrow("agent TPC-B within 5% of none", "agent", "tpcb", 0.95)
tpsrow("agent select-only within 5% of none", "agent", "select", 0.95)
v = lt("cg_agent10", "cg_none", 0)
row("  agent instructions/statement, backend only (callgrind)", "-" if v is None else f"{v:.4f}", None if v is None else v <= 1.05)
v = lt("cg_agent10_s", "cg_none_s", 0)
row("  the same, SELECT only", "-" if v is None else f"{v:.4f}", None if v is None else v <= 1.05)
for m in ["tpcb", "select"]:
    a, p = f("tps_agent_" + m), f("tps_pgaudit_" + m)
    ca, cp = f("cpu_agent_" + m), f("cpu_pgaudit_" + m)
    row(f"agent {m} faster than pgaudit write,ddl", "-" if a is None or not p else
        f"{a / p:.4f} (CPU/txn {ca / cp:.3f})" if ca and cp else f"{a / p:.4f}",
        None if a is None or not p else a > p)
v = lt("cg_agent10k", "cg_agent10", 0)
row("10,000 policies < +2% over 10 (callgrind)", "-" if v is None else f"{v:.4f}", None if v is None else v < 1.02)
v = lt("tps_agent10k_tpcb", "tps_agent_tpcb", 0)
row("  10,000 policies vs defaults, TPC-B tps (information only)", "-" if v is None else f"{v:.4f}", None)
if f("burst_statements"):
    n = r["burst_statements"]
    ok = (r.get("burst_audit_once") == n and r.get("burst_log_once") == n and r.get("burst_errors") == n
          and r.get("burst_requests_once") == r.get("burst_parked") and r.get("burst_audit_rows") == n
          and r.get("burst_audit_wrong_decision") == "0" and r.get("burst_data_intact") == "yes")
    row("burst: one audit row, one log line each, no request lost", f"{r['burst_per_second']} refusals/s", ok)
v = f("park_parked_p99")
row("parking latency p99 < 20 ms", "-" if v is None else f"{v} ms", None if v is None else v < 20)
PY
