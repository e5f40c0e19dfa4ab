#!/usr/bin/env bash
# Memory of a guarded backend over many statements (SPEC §11: flat over a
# million guarded statements).  One agent session runs N statements, three
# point SELECTs to one point UPDATE (every UPDATE is judged and recorded),
# then R refused statements (each refusal stored durably before its error)
# and R parked ones (each a request stored before its error);
# every tenth of the way it reads the total of its own memory contexts from
# pg_backend_memory_contexts.  Prints the totals and the growth between the
# first and the last checkpoint of each phase.
# usage: sudo bash bench/memory.sh [N=1000000] [R=20000]
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
N=${1:-1000000}
R=${2:-20000}

start_cluster memory "shared_preload_libraries = 'agent_guard'" \
	"agent_guard.breaker_threshold = 2000000000" "fsync = off"
sql >/dev/null <<'SQL'
CREATE EXTENSION agent_guard;
CREATE ROLE bench_agent LOGIN;
CREATE TABLE public.jobs (id int PRIMARY KEY, note text);
INSERT INTO public.jobs SELECT g, 'job' FROM generate_series(1, 100000) g;
GRANT ALL ON public.jobs TO bench_agent;
GRANT SELECT ON pg_catalog.pg_backend_memory_contexts TO bench_agent;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_get_backend_memory_contexts() TO bench_agent;
SET client_min_messages = error;
SELECT agent_guard.register_agent('bench_agent');
SELECT agent_guard.set_policy('TRUNCATE TABLE', 'public.jobs', 'deny');
SELECT agent_guard.set_policy('DELETE', 'public.jobs', 'require_approval');
SQL

script=$BENCH_DIR/memory.sql
python3 - "$N" "$R" > "$script" <<'PY'
import sys
n, r = int(sys.argv[1]), int(sys.argv[2])
checkpoint = ("SELECT '{phase} ' || {done} || ' ' || sum(total_bytes) || ' ' || count(*)"
              " FROM pg_backend_memory_contexts;")
print(checkpoint.format(phase="start", done=0))
for i in range(1, n + 1):
    row = 1 + (i * 7919) % 100000
    if i % 4 == 0:
        print(f"UPDATE public.jobs SET note = 'run {i}' WHERE id = {row};")
    else:
        print(f"SELECT note FROM public.jobs WHERE id = {row};")
    if i % max(1, n // 10) == 0:
        print(checkpoint.format(phase="guarded", done=i))
for i in range(1, r + 1):
    print(f"TRUNCATE public.jobs; -- {i}")
    if i % max(1, r // 10) == 0:
        print(checkpoint.format(phase="refused", done=i))
for i in range(1, r + 1):
    print(f"DELETE FROM public.jobs WHERE id = {i};")
    if i % max(1, r // 10) == 0:
        print(checkpoint.format(phase="parked", done=i))
PY
chown postgres "$script"

echo "agent_guard backend memory, $N guarded statements then $R refusals, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
started=$(date +%s)
as_pg "$BIN/psql" -X -q -At -U bench_agent -f "$script" 2>/dev/null |
	grep -E '^(start|guarded|refused|parked) ' > "$BENCH_DIR/checkpoints"
echo "ran in $(($(date +%s) - started)) s"
python3 - "$BENCH_DIR/checkpoints" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
print(f"{'phase':<8} {'statements':>10} {'bytes':>10} {'contexts':>8}")
for phase, done, total, contexts in rows:
    print(f"{phase:<8} {int(done):>10} {int(total):>10} {int(contexts):>8}")
for phase in ("guarded", "refused", "parked"):
    points = [r for r in rows if r[0] == phase]
    if len(points) >= 2:
        first, last = points[0], points[-1]
        print(f"{phase}: {int(last[2]) - int(first[2]):+d} bytes from statement "
              f"{first[1]} to {last[1]}")
PY
sql -tAc "SELECT 'audit rows stored: ' || count(*) FROM agent_guard.audit_log"
sql -tAc "SELECT 'requests stored:   ' || count(*) FROM agent_guard.requests"
