# Shared helpers for the benchmarks: throw-away clusters owned by postgres.
# Source it; call start_cluster NAME [extra postgresql.conf lines...].
set -euo pipefail
BIN=$(pg_config --bindir)
BENCH_DIR=$(mktemp -d /tmp/agent_guard-bench.XXXXXX)
chown postgres "$BENCH_DIR"
trap 'stop_all_clusters; rm -rf "$BENCH_DIR"' EXIT
CLUSTERS=()

as_pg() { runuser -u postgres -- "$@"; }

# start_cluster NAME CONF_LINE... : sets PGPORT and PGHOST for psql calls
start_cluster() {
	local name=$1; shift
	local dir="$BENCH_DIR/$name"
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	as_pg "$BIN/initdb" -D "$dir" -A trust --no-sync >/dev/null
	{
		echo "port = $port"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$BENCH_DIR'"
		for line in "$@"; do echo "$line"; done
	} >> "$dir/postgresql.conf"
	as_pg "$BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
	CLUSTERS+=("$dir")
	export PGPORT=$port PGHOST=$BENCH_DIR PGUSER=postgres PGDATABASE=postgres
}

stop_all_clusters() {
	local dir
	for dir in "${CLUSTERS[@]:-}"; do
		[ -n "$dir" ] && as_pg "$BIN/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
	done
	CLUSTERS=()
}

sql() { as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
