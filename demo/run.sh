#!/usr/bin/env bash
# agent_guard demo: replay the 3 a.m. incident against a throw-away
# PostgreSQL 15 cluster and show what agent_guard does about it.
#
# usage: sudo bash demo/run.sh          (installs what is missing, builds,
#                                         installs the extension, runs, cleans up)
#        sudo KEEP=1 bash demo/run.sh   (leaves the cluster running afterwards)
#        sudo PORT=5499 bash demo/run.sh (use this port instead of a free one)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
	exec sudo KEEP="${KEEP:-}" PORT="${PORT:-}" bash "$0" "$@"
fi
keep=${KEEP:-}
started=$(date +%s)

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
heading() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '%s\n' "$*"; }

heading "1. Packages (PostgreSQL 15, build tools)"
bash "$here/.ci/setup"
bindir=/usr/lib/postgresql/15/bin
say "ok: $("$bindir/postgres" --version)"

heading "2. Build and install agent_guard"
(cd "$here" && make -s PG_CONFIG="$bindir/pg_config" &&
	make -s PG_CONFIG="$bindir/pg_config" install)
say "installed into $("$bindir/pg_config" --pkglibdir) and $("$bindir/pg_config" --sharedir)/extension"

heading "3. A throw-away cluster with shared_preload_libraries = agent_guard"
port_in_use() {
	[ -e "/var/run/postgresql/.s.PGSQL.$1" ] || [ -e "/tmp/.s.PGSQL.$1" ] ||
		compgen -G "/tmp/agent_guard-demo.*/.s.PGSQL.$1" >/dev/null ||
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
port=${PORT:-}
if [ -z "$port" ]; then
	port=54320
	while port_in_use "$port"; do port=$((port + 1)); done
fi
tmp=$(mktemp -d /tmp/agent_guard-demo.XXXXXX)
chown postgres: "$tmp"
data=$tmp/data
log=$tmp/server.log
running=

as_postgres() { runuser -u postgres -- "$@"; }
cleanup() {
	local status=$?
	set +e
	if [ $status -ne 0 ] && [ -f "$log" ]; then
		echo "demo failed (exit $status); last lines of the server log:" >&2
		tail -n 30 "$log" >&2
	fi
	if [ -n "$keep" ] && [ $status -eq 0 ]; then
		return
	fi
	if [ -n "$running" ]; then
		as_postgres "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

as_postgres "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale \
	--no-instructions >/dev/null
cat >>"$data/postgresql.conf" <<CONF
# agent_guard demo
port = $port
# the MCP server in step 10 reaches PostgreSQL over TCP only
listen_addresses = '127.0.0.1'
unix_socket_directories = '$tmp'
shared_preload_libraries = 'agent_guard'
# six refusals within a minute stop the agent's writes (the default is 20)
agent_guard.breaker_threshold = 6
lc_messages = 'C'
fsync = off
CONF
as_postgres "$bindir/pg_ctl" -D "$data" -l "$log" -w start >/dev/null
running=1
say "cluster in $data, unix socket in $tmp, port $port, server log $log"

# psql as the DBA (stops at the first error) and as the agent (carries on,
# the way an agent would, and prints each statement and its SQLSTATE)
dba() {
	"$bindir/psql" -X -q -h "$tmp" -p "$port" -U postgres -v ON_ERROR_STOP=1 "$@"
}
agent() {
	"$bindir/psql" -X -q -h "$tmp" -p "$port" -U ops_agent \
		-v VERBOSITY=default -v ECHO=queries "$@" 2>&1
}

dba -d postgres -c 'CREATE DATABASE shop'
dba -d shop <<'SQL'
CREATE EXTENSION agent_guard;
SQL
say "CREATE EXTENSION agent_guard; in database shop"

heading "4. The business: customers, orders, invoices, app_logs (owned by role app)"
dba -d shop <<'SQL'
CREATE ROLE app NOLOGIN;
CREATE TABLE customers (
	id int PRIMARY KEY,
	name text NOT NULL,
	email text NOT NULL);
CREATE TABLE orders (
	id int PRIMARY KEY,
	customer_id int NOT NULL REFERENCES customers,
	amount numeric(10,2) NOT NULL,
	ordered_at timestamptz NOT NULL);
CREATE TABLE invoices (
	id int PRIMARY KEY,
	order_id int NOT NULL REFERENCES orders,
	total numeric(10,2) NOT NULL,
	issued_at timestamptz NOT NULL);
CREATE TABLE app_logs (
	id bigint PRIMARY KEY,
	created_at timestamptz NOT NULL,
	level text NOT NULL,
	message text NOT NULL);
CREATE INDEX ON app_logs (created_at);
CREATE VIEW customer_revenue AS
	SELECT c.id, c.name, sum(o.amount) AS revenue
	  FROM customers c JOIN orders o ON o.customer_id = c.id
	 GROUP BY c.id, c.name;

INSERT INTO customers
	SELECT g, 'Customer ' || g, 'customer' || g || '@example.com'
	  FROM generate_series(1, 200) g;
INSERT INTO orders
	SELECT g, 1 + g % 200, 10 + (g * 37) % 990, now() - g * interval '1 hour'
	  FROM generate_series(1, 1000) g;
INSERT INTO invoices
	SELECT g, g, 10 + (g * 37) % 990, now() - g * interval '1 hour'
	  FROM generate_series(1, 800) g;
-- 1000 log lines older than 30 days, 4000 from the last two weeks
INSERT INTO app_logs
	SELECT g,
		   CASE WHEN g <= 1000
				THEN now() - interval '31 days' - g * interval '1 minute'
				ELSE now() - (g - 1000) * interval '5 minutes' END,
		   (ARRAY['info', 'info', 'info', 'warning', 'error'])[1 + g % 5],
		   'request ' || g || ' served'
	  FROM generate_series(1, 5000) g;

ALTER TABLE customers OWNER TO app;
ALTER TABLE orders OWNER TO app;
ALTER TABLE invoices OWNER TO app;
ALTER TABLE app_logs OWNER TO app;
ALTER VIEW customer_revenue OWNER TO app;
ANALYZE;
SQL
counts_sql="SELECT 'customers' AS \"table\", count(*) AS \"rows\" FROM customers
	UNION ALL SELECT 'orders', count(*) FROM orders
	UNION ALL SELECT 'invoices', count(*) FROM invoices
	UNION ALL SELECT 'app_logs', count(*) FROM app_logs
	UNION ALL SELECT 'app_logs older than 30 days', count(*) FROM app_logs
	          WHERE created_at < now() - interval '30 days'"
dba -d shop -c "$counts_sql"

heading "5. The agent ops_agent, and the human on call"
say "ops_agent logs in and was given the application's role app, so PostgreSQL"
say "alone would let it drop, truncate and delete everything app owns."
dba -d shop -v ECHO=queries <<'SQL'
CREATE ROLE ops_agent LOGIN IN ROLE app;
SET client_min_messages = error;
SELECT agent_guard.register_agent('ops_agent') \g /dev/null
RESET client_min_messages;
SELECT * FROM agent_guard.agents;
SELECT attribute, severity, fix_sql FROM agent_guard.agent_posture('ops_agent')
 ORDER BY attribute;
SELECT id, command, object_pattern, action, max_rows FROM agent_guard.policies ORDER BY id;
SQL
say "(register_agent() warns once per finding of agent_posture(); silenced above.)"
say
say "What each role may use of agent_guard (the extension grants nothing to PUBLIC):"
dba -d shop -v ECHO=queries <<'SQL'
-- the agent may ask before it acts, and follow its own requests
GRANT USAGE ON SCHEMA agent_guard TO ops_agent;
GRANT EXECUTE ON FUNCTION agent_guard.evaluate(text, regrole) TO ops_agent;
GRANT SELECT ON agent_guard.my_requests TO ops_agent;
-- the approver decides on parked statements and reads the audit trail
CREATE ROLE oncall LOGIN;
GRANT USAGE ON SCHEMA agent_guard TO oncall;
GRANT EXECUTE ON FUNCTION agent_guard.approve_pending(bigint, text),
    agent_guard.reject_pending(bigint, text), agent_guard.verify_audit() TO oncall;
GRANT SELECT ON agent_guard.pending_requests, agent_guard.requests,
    agent_guard.audit_events, agent_guard.agent_activity TO oncall;
SQL

heading "6. 3 a.m.: ops_agent starts 'cleaning up' (each statement as the agent sent it)"
say "-- a burst of DROP TABLEs"
agent -d shop <<'SQL'
DROP TABLE orders;
\echo '   -> SQLSTATE' :SQLSTATE
DROP TABLE customers;
\echo '   -> SQLSTATE' :SQLSTATE
DROP TABLE invoices;
\echo '   -> SQLSTATE' :SQLSTATE
DROP TABLE app_logs;
\echo '   -> SQLSTATE' :SQLSTATE
DROP TABLE customers CASCADE;
\echo '   -> SQLSTATE' :SQLSTATE
\echo
\echo '-- then a TRUNCATE'
TRUNCATE orders, invoices;
\echo '   -> SQLSTATE' :SQLSTATE
\echo
\echo '-- then "delete the logs", without a WHERE clause'
DELETE FROM app_logs;
\echo '   -> SQLSTATE' :SQLSTATE
SQL
say
say "AG001 means \"parked\": the statement did not run; it is stored as a request that a"
say "human can approve or reject. 42501 means \"forbidden\". After six refusals within a"
say "minute the circuit breaker tripped (AG003): every further write or DDL of the agent is"
say "refused until a human resets it. The trip was also sent on NOTIFY agent_guard_alert:"
dba -d shop <<'SQL'
SELECT agent, denied, parked, breaker_trips, breaker_tripped FROM agent_guard.agent_activity;
SELECT seq, decision, reason FROM agent_guard.audit_events WHERE decision = 'breaker_tripped';
SQL
say "The on-call human looks, and resets the breaker:"
dba -d shop -c "SELECT agent_guard.reset_breaker('ops_agent') AS was_tripped"

heading "7. No way around it"
say "-- switching to the owning role, turning the guard off, loosening the policy,"
say "-- approving its own request"
agent -d shop <<'SQL'
SET ROLE app;
DROP TABLE orders;
\echo '   -> SQLSTATE' :SQLSTATE
RESET ROLE;
SET agent_guard.enabled = off;
\echo '   -> SQLSTATE' :SQLSTATE
SELECT agent_guard.set_policy('DROP TABLE', '*', 'allow');
\echo '   -> SQLSTATE' :SQLSTATE
SELECT agent_guard.approve_pending(1);
\echo '   -> SQLSTATE' :SQLSTATE
SQL
say
say "-- another database of the cluster, where the extension is not installed:"
say "-- the agent may read there, nothing else"
agent -d postgres <<'SQL'
CREATE TABLE scratch (id int);
\echo '   -> SQLSTATE' :SQLSTATE
SQL

dba -d shop -c "SELECT agent_guard.reset_breaker('ops_agent') AS was_tripped" >/dev/null

heading "8. \"Delete logs older than 30 days\", asking agent_guard.evaluate() first"
say "The agent's cleanup statement has a bug: '+' where it meant '-', so it matches every row."
say "evaluate() parses and plans a statement and reports the decision; it never runs it."
agent -d shop <<'SQL'
SELECT command, object, action, policy_id, reason
  FROM agent_guard.evaluate($$DELETE FROM app_logs WHERE created_at < now() + interval '1 day'$$,
                            current_user::regrole);
SQL
say
say "Policy 4 allows a DELETE with a WHERE clause, but caps it at max_rows 1000 rows."
say "The agent sends it; it would delete all 5000 rows, so it is rolled back (AG002):"
agent -d shop <<'SQL'
DELETE FROM app_logs WHERE created_at < now() + interval '1 day';
\echo '   -> SQLSTATE' :SQLSTATE
SQL
say
say "The DBA decides that log cleanup needs a human from now on:"
dba -d shop -v ECHO=queries <<'SQL'
SELECT agent_guard.set_policy('DELETE', 'public.app_logs', 'require_approval',
                              note => 'log cleanup needs a human') AS policy_id;
SQL

heading "9. The morning: all data is intact, and the night's requests wait for a human"
dba -d shop -c "$counts_sql"
intact=$(dba -d shop -Atc "SELECT (SELECT count(*) FROM customers) = 200
	AND (SELECT count(*) FROM orders) = 1000
	AND (SELECT count(*) FROM invoices) = 800
	AND (SELECT count(*) FROM app_logs) = 5000
	AND to_regclass('public.customer_revenue') IS NOT NULL")
if [ "$intact" != t ]; then
	say "DATA WAS LOST: the demo failed" >&2
	exit 1
fi
oncall() {
	"$bindir/psql" -X -q -h "$tmp" -p "$port" -U oncall -v ON_ERROR_STOP=1 "$@"
}
say "As oncall, an approver who is not an agent:"
oncall -d shop -v ECHO=queries <<'SQL'
SELECT id, agent, command, objects, statement
  FROM agent_guard.pending_requests ORDER BY id;
-- nothing from last night gets approved
SELECT id, agent_guard.reject_pending(id, 'not approved: destructive change at 3 a.m.')
  FROM agent_guard.pending_requests ORDER BY id;
SQL

heading "10. The agent sends the statement it meant, through its MCP server"
say "Agents usually reach the database through an MCP server. Here ops_agent uses dbhub"
say "(npm package @bytebase/dbhub, stdio transport): initialize, tools/list, then a"
say "tools/call of its SQL tool per statement, exactly as an agent framework sends them."
meant="DELETE FROM app_logs WHERE created_at < now() - interval '30 days'"
clients=$here/clients
if [ ! -f "$clients/node_modules/@bytebase/dbhub/dist/index.js" ]; then
	npm ci --prefix "$clients" --omit=optional --ignore-scripts --no-audit --no-fund \
		--no-update-notifier --loglevel=error >/dev/null 2>&1 || true
fi
if [ -f "$clients/node_modules/@bytebase/dbhub/dist/index.js" ]; then
	node "$clients/mcp_call.mjs" "postgres://ops_agent@127.0.0.1:$port/shop?sslmode=disable" \
		"$meant" \
		"SELECT id, command, status FROM agent_guard.my_requests ORDER BY id DESC LIMIT 1"
	say
	say "dbhub shows the agent the primary message only: it says what waits, and as which"
	say "request, so the agent can wait for the decision instead of retrying."
else
	say "(npm could not install dbhub here; the agent sends it with psql instead)"
	agent -d shop -c "$meant"
fi
request=$(oncall -d shop -Atc "SELECT id FROM agent_guard.pending_requests
	WHERE command = 'DELETE' ORDER BY id DESC LIMIT 1")
say
say "oncall approves that one request; it runs as ops_agent, exactly once:"
oncall -d shop -v ECHO=queries <<SQL
SELECT agent_guard.approve_pending($request, 'cleanup of logs older than 30 days');
SELECT id, status, decided_by, rows FROM agent_guard.requests WHERE id = $request;
SQL
agent -d shop <<'SQL'
SELECT id, command, status, rows FROM agent_guard.my_requests ORDER BY id DESC LIMIT 1;
SQL
dba -d shop -c "$counts_sql"
cleaned=$(dba -d shop -Atc "SELECT (SELECT count(*) FROM app_logs) = 4000
	AND (SELECT count(*) FROM orders) = 1000")
if [ "$cleaned" != t ]; then
	say "the approved cleanup did not do what was approved: the demo failed" >&2
	exit 1
fi

heading "11. The audit trail"
oncall -d shop -v ECHO=queries <<'SQL'
SELECT seq, decision, agent, actor, command, objects, request_id, rows
  FROM agent_guard.audit_events ORDER BY seq;
SELECT agent, mode, allowed, denied, parked, approved_executed, rejected
  FROM agent_guard.agent_activity;
SELECT intact, rows_checked FROM agent_guard.verify_audit();
SQL

heading "12. The same records in the server log (one JSON object per 'agent_guard: ' line)"
say "Each stored audit row is also written to the server log by the writer, as one JSON"
say "object after 'agent_guard: '. Decisions that cannot be stored (here: the database"
say "without the extension) are logged by the session itself, with seq null."
events=$(grep -o 'agent_guard: {.*}$' "$log" | sed 's/^agent_guard: //' || true)
say "$(printf '%s\n' "$events" | grep -c . || true) agent_guard lines in $log:"
if command -v jq >/dev/null; then
	printf '%s\n' "$events" | jq .
elif command -v python3 >/dev/null; then
	printf '%s\n' "$events" | python3 -c '
import json, sys
for line in sys.stdin:
    print(json.dumps(json.loads(line), indent=2))'
else
	printf '%s\n' "$events"
fi

heading "Done in $(($(date +%s) - started)) s"
if [ -n "$keep" ]; then
	say "The cluster keeps running (KEEP=1)."
	say "  as the DBA:    sudo -u postgres psql -h $tmp -p $port -d shop"
	say "  as the agent:  sudo -u postgres psql -h $tmp -p $port -U ops_agent -d shop"
	say "  as oncall:     sudo -u postgres psql -h $tmp -p $port -U oncall -d shop"
	say "  server log:    $log"
	say "  stop it:       sudo -u postgres $bindir/pg_ctl -D $data stop && sudo rm -rf $tmp"
else
	say "Cluster stopped and $tmp removed (KEEP=1 keeps it running)."
fi
