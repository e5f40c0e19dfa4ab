#!/usr/bin/env bash
# Parking latency: time from an agent sending a statement that needs approval
# to receiving the error that names its request (the request and its audit
# record committed by the writer in between).  Prints p50/p99 over N parks,
# next to an allowed statement and a denied one measured the same way.
# usage: sudo bash bench/park_latency.sh [N=1000]
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
N=${1:-1000}

start_cluster park "shared_preload_libraries = 'agent_guard'"
sql >/dev/null <<'SQL'
CREATE EXTENSION agent_guard;
CREATE ROLE bench_agent LOGIN;
CREATE TABLE public.jobs (id int PRIMARY KEY, note text);
INSERT INTO public.jobs SELECT g, 'job' FROM generate_series(1, 100000) g;
GRANT ALL ON public.jobs TO bench_agent;
SET client_min_messages = error;
SELECT agent_guard.register_agent('bench_agent');
SELECT agent_guard.set_policy('DELETE', 'public.jobs', 'require_approval');
SELECT agent_guard.set_policy('TRUNCATE TABLE', 'public.jobs', 'deny');
SQL

# one psql session per kind, \timing on; psql reports the time of failed statements too
measure() { # $1 = label, $2 = statement template with %d
	local file="$BENCH_DIR/$1.sql"
	{ echo '\timing on'; for i in $(seq 1 "$N"); do printf "$2\n" "$i"; done; } > "$file"
	chown postgres "$file"
	as_pg "$BIN/psql" -X -U bench_agent -f "$file" 2>/dev/null | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' > "$BENCH_DIR/$1.times"
	python3 - "$1" "$BENCH_DIR/$1.times" <<'PY'
import sys, statistics
label, path = sys.argv[1], sys.argv[2]
t = sorted(float(x) for x in open(path))
p = lambda q: t[min(len(t) - 1, int(round(q * (len(t) - 1))))]
print(f"{label:<10} n={len(t):<5} p50={p(0.50):7.3f} ms  p99={p(0.99):7.3f} ms  max={t[-1]:7.3f} ms")
PY
}

echo "agent_guard parking latency, $N statements each, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
measure allowed "UPDATE public.jobs SET note = 'x' WHERE id = %d;"
measure denied  "TRUNCATE public.jobs; -- %d"
measure parked  "DELETE FROM public.jobs WHERE id = %d;"
sql -tAc "SELECT 'requests stored: ' || count(*) FROM agent_guard.requests"
sql -tAc "SELECT 'refusal records:  ' || count(*) FROM agent_guard.audit_log WHERE decision IN ('denied', 'parked')"
