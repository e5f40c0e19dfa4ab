# Copyright (c) agent_guard authors

# The clients agents really use, end to end: the dbhub MCP server driven over
# stdio JSON-RPC as an MCP host drives it (initialize, tools/list, tools/call
# of its SQL tool), node-postgres with parameterised statements (extended
# protocol), and psql.  Each part proves what text of a refusal reaches the
# agent, that the data is intact, and that the agent can wait for a human's
# decision on a parked statement and see the outcome.
#
# Needs Node.js (skipped without it) and the packages pinned in
# clients/package-lock.json; if clients/node_modules is missing the test runs
# "npm ci" there, which needs the npm registry.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $clients = abs_path(dirname(__FILE__) . '/../clients');

my $node_version = `node --version 2>/dev/null` // '';
plan skip_all =>
  'Node.js is not installed (the client tests need node and npm, e.g. apt-get install nodejs npm)'
  unless $? == 0 && $node_version =~ /^v(\d+)\./;
my $node_major = $1;

my $dbhub_main = "$clients/node_modules/\@bytebase/dbhub/dist/index.js";
if (!-f $dbhub_main || !-f "$clients/node_modules/pg/package.json")
{
	# the npm cache goes to tmp_check/, not to the user's home
	my $installed = eval {
		run_log([ 'npm', 'ci', '--prefix', $clients, '--omit=optional',
			'--ignore-scripts', '--no-audit', '--no-fund', '--no-update-notifier',
			'--cache', "$PostgreSQL::Test::Utils::tmp_check/npm-cache" ]);
	};
	die "npm ci in $clients failed ($@): install npm, or the clients by hand with "
	  . "(cd clients && npm ci --omit=optional --ignore-scripts)"
	  unless $installed;
}
# dbhub uses the global Web Crypto object, behind a flag before Node.js 19
my @node_flags = $node_major < 19 ? ('--experimental-global-webcrypto') : ();

my $agent = 'regress_clients_bot';
my $approver = 'regress_clients_carol';

my $node = PostgreSQL::Test::Cluster->new('clients');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'agent_guard'");
# dbhub takes a URL DSN and cannot reach a Unix socket: listen on TCP too
$node->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'");
$node->start;
my $port = $node->port;
my $url = "postgres://$agent\@127.0.0.1:$port/postgres?sslmode=disable";

$node->safe_psql('postgres', qq{
	CREATE EXTENSION agent_guard;
	CREATE ROLE $agent LOGIN;
	CREATE ROLE $approver LOGIN;
	CREATE TABLE public.orders (id int PRIMARY KEY, item text);
	INSERT INTO public.orders SELECT g, 'item ' || g FROM generate_series(1, 10) g;
	CREATE TABLE public.sessions (id int PRIMARY KEY);
	INSERT INTO public.sessions SELECT generate_series(1, 5);
	CREATE TABLE public.events (id int PRIMARY KEY);
	INSERT INTO public.events SELECT generate_series(1, 10);
	GRANT SELECT, INSERT, UPDATE, DELETE ON public.orders, public.sessions, public.events TO $agent;
	-- what an agent needs to follow its requests (README, Roles and privileges)
	GRANT USAGE ON SCHEMA agent_guard TO $agent, $approver;
	GRANT SELECT ON agent_guard.my_requests TO $agent;
	GRANT EXECUTE ON FUNCTION agent_guard.wait_for_decision(bigint, interval) TO $agent;
	GRANT EXECUTE ON FUNCTION agent_guard.approve_pending(bigint, text),
		agent_guard.reject_pending(bigint, text) TO $approver;
	SET client_min_messages = error;
	SELECT agent_guard.register_agent('$agent');
	-- a refusal: nobody's agent drops the orders
	SELECT agent_guard.set_policy('DROP TABLE', 'public.orders', 'deny');
	-- a DELETE with WHERE that still needs a human
	SELECT agent_guard.set_policy('DELETE', 'public.events', 'require_approval');
});
my $deny_policy = $node->safe_psql('postgres',
	q{SELECT id FROM agent_guard.policies WHERE command = 'DROP TABLE' AND object_pattern = 'public.orders'});
my $events_policy = $node->safe_psql('postgres',
	q{SELECT id FROM agent_guard.policies WHERE command = 'DELETE' AND object_pattern = 'public.events'});
my $destructive_policy = $node->safe_psql('postgres',
	q{SELECT id FROM agent_guard.policies WHERE command = 'DESTRUCTIVE' AND agent IS NULL});

# Count of rows in each table, as the superuser sees them.
sub table_counts
{
	return $node->safe_psql('postgres', q{
		SELECT (SELECT count(*) FROM public.orders) || ' '
			|| (SELECT count(*) FROM public.sessions) || ' '
			|| (SELECT count(*) FROM public.events)});
}

# The id of the agent's newest request, as the superuser sees it.
sub newest_request
{
	return $node->safe_psql('postgres',
		"SELECT max(id) FROM agent_guard.requests WHERE \"session_user\" = '$agent'");
}

# Wait until the agent sleeps in wait_for_decision().
sub agent_is_waiting
{
	return $node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE usename = '$agent' AND wait_event_type = 'Extension'
		   AND query LIKE '%wait_for_decision%'});
}

# Approve or reject a request as the human approver, through psql.
sub decide
{
	my ($call) = @_;
	return $node->safe_psql('postgres', $call, extra_params => [ '-U', $approver ]);
}

is(table_counts(), '10 5 10', 'the tables start full');

#
# dbhub, the MCP server, over stdio
#
my ($mcp_in, $mcp_out, $mcp_err) = ('', '', '');
my $mcp_timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
my $mcp_id = 0;
# cwd in clients/: dbhub reads ./dbhub.toml and ./.env if they exist
my $mcp = IPC::Run::start(
	[ 'node', @node_flags, $dbhub_main, '--transport', 'stdio', '--dsn', $url ],
	'<', \$mcp_in, '>', \$mcp_out, '2>', \$mcp_err,
	init => sub { chdir $clients or die "chdir $clients: $!" },
	$mcp_timer);

# Send a JSON-RPC request to the MCP server; returns its id.
sub mcp_send
{
	my ($method, $params) = @_;
	$mcp_in .= encode_json({ jsonrpc => '2.0', id => ++$mcp_id,
		method => $method, params => $params }) . "\n";
	$mcp->pump_nb;
	return $mcp_id;
}

# Read messages (one JSON object a line) until the response to request $id.
sub mcp_receive
{
	my ($id) = @_;
	$mcp_timer->start($PostgreSQL::Test::Utils::timeout_default);
	while (1)
	{
		pump_until($mcp, $mcp_timer, \$mcp_out, qr/\n/)
		  or die "no answer from dbhub to request $id; its stderr:\n$mcp_err";
		while ($mcp_out =~ s/\A([^\n]*)\n//)
		{
			my $message = decode_json($1);
			return $message if defined $message->{id} && $message->{id} == $id;
		}
	}
}

# Call the SQL tool as an agent does; returns (is_error, text, parsed text).
my $sql_tool;
sub mcp_sql
{
	my ($sql) = @_;
	my $response = mcp_receive(mcp_send('tools/call',
		{ name => $sql_tool, arguments => { sql => $sql } }));
	my $result = $response->{result} // die 'tools/call failed: ' . encode_json($response);
	my $text = join '', map { $_->{text} // '' } @{ $result->{content} };
	my $parsed = eval { decode_json($text) };
	note("dbhub answers $sql with: $text");
	return ($result->{isError} ? 1 : 0, $text, $parsed);
}

my $init = mcp_receive(mcp_send('initialize', {
	protocolVersion => '2025-06-18',
	capabilities => {},
	clientInfo => { name => 'agent_guard-test', version => '1.0' } }));
like($init->{result}{serverInfo}{name}, qr/DBHub/i, 'dbhub: initialize');
note('dbhub ' . ($init->{result}{serverInfo}{version} // '?') . ', protocol '
	  . ($init->{result}{protocolVersion} // '?'));
$mcp_in .= encode_json({ jsonrpc => '2.0', method => 'notifications/initialized' }) . "\n";

my $tools = mcp_receive(mcp_send('tools/list', {}))->{result}{tools} // [];
($sql_tool) = map { $_->{name} }
  grep { exists $_->{inputSchema}{properties}{sql} } @$tools;
is($sql_tool, 'execute_sql', 'dbhub: tools/list offers its SQL tool');

# The wording of the messages is the extension's to change: the tests check
# what an agent needs to find in them; the exact texts go to the test's log.

# a refusal: through dbhub the agent reads the primary message only
my ($is_error, $text, $answer) = mcp_sql('DROP TABLE public.orders');
ok($is_error, 'dbhub: the refused DROP TABLE is a tool error');
like($answer->{error}, qr/^DROP TABLE on public\.orders\b/,
	'dbhub: the agent reads what was refused');
unlike($answer->{error}, qr/\brequest \d/,
	'dbhub: the agent is not sent waiting for a request');
is(table_counts(), '10 5 10', 'dbhub: the data is intact after the refused DROP TABLE');

# a parked statement: the agent must learn which request to wait for
($is_error, $text, $answer) = mcp_sql('DELETE FROM public.sessions');
my $parked = newest_request();
ok($is_error, 'dbhub: the parked DELETE is a tool error');
like($answer->{error}, qr/^DELETE WITHOUT WHERE on public\.sessions\b.*\bapproval\b/,
	'dbhub: the agent reads that the DELETE waits for approval');
like($answer->{error}, qr/\brequest $parked\b/,
	'dbhub: the request id reaches the agent in what dbhub shows (the primary message)');
is(table_counts(), '10 5 10', 'dbhub: the data is intact after the parked DELETE');

# the agent can also find its request in my_requests
($is_error, $text, $answer) = mcp_sql(
	q{SELECT id, status, command FROM agent_guard.my_requests ORDER BY id DESC LIMIT 1});
ok(!$is_error, 'dbhub: the agent reads my_requests');
is_deeply($answer->{data}{statements}[0]{rows},
	[ { id => $parked, status => 'pending', command => 'DELETE WITHOUT WHERE' } ],
	'dbhub: my_requests shows the parked request');

# the agent waits in one call while a human approves
my $wait = mcp_send('tools/call', { name => $sql_tool,
	arguments => { sql => "SELECT * FROM agent_guard.wait_for_decision($parked)" } });
ok(agent_is_waiting(), 'dbhub: the agent sleeps in wait_for_decision()');
is(decide("SELECT agent_guard.approve_pending($parked, 'ok')"), 'executed',
	'psql: the human approves the parked DELETE');
my $waited = mcp_receive($wait)->{result};
$answer = eval { decode_json($waited->{content}[0]{text}) } // {};
note('dbhub answers wait_for_decision with: ' . $waited->{content}[0]{text});
ok(!$waited->{isError}, 'dbhub: wait_for_decision returns');
is_deeply([ map { [ $_->{status}, $_->{rows} ] } @{ $answer->{data}{statements}[0]{rows} // [] } ],
	[ [ 'executed', 5 ] ], 'dbhub: the agent sees its DELETE executed, 5 rows');
is(table_counts(), '10 0 10', 'dbhub: the approved DELETE ran once');

# several statements in one call: dbhub splits them, sends them one by one in
# a transaction of its own and rolls it back on the error; the request (the
# DELETE alone) is stored all the same
($is_error, $text, $answer) = mcp_sql(
	'SELECT count(*) FROM public.orders; DELETE FROM public.orders');
my $rolled_back = newest_request();
ok($is_error && $rolled_back > $parked,
	'dbhub: a DELETE parked inside its transaction is refused');
is($node->safe_psql('postgres',
		"SELECT status || ' ' || statement FROM agent_guard.requests WHERE id = $rolled_back"),
	'pending DELETE FROM public.orders',
	'dbhub: the request survives the rollback');
is(decide("SELECT agent_guard.reject_pending($rolled_back, 'keep the orders')"), 'rejected',
	'psql: the human rejects it');
($is_error, $text, $answer) = mcp_sql(
	"SELECT * FROM agent_guard.wait_for_decision($rolled_back, '10 seconds')");
is_deeply($answer->{data}{statements}[0]{rows},
	[ { status => 'rejected', rows => undef, reason => 'keep the orders' } ],
	'dbhub: the agent sees the rejection and its reason');
is(table_counts(), '10 0 10', 'dbhub: the orders are intact');

$mcp_in = '';
$mcp->finish;
note("dbhub stderr:\n$mcp_err");

#
# node-postgres, extended protocol
#

# Run one statement with clients/pg_query.mjs as the agent.
sub node_pg
{
	my ($sql, @params) = @_;
	my ($out, $err) = ('', '');
	my @cmd = ('node', "$clients/pg_query.mjs", $url, $sql);
	push @cmd, encode_json(\@params) if @params;
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default))
	  or die "pg_query.mjs failed: $err";
	note("node-pg answers $sql with: $out");
	return decode_json($out);
}

my $denied = node_pg('DROP TABLE public.orders');
is($denied->{error}{code}, '42501', 'node-pg: the DROP TABLE is denied with 42501');
like($denied->{error}{message}, qr/^DROP TABLE on public\.orders\b/,
	'node-pg: error.message says what was refused');
like($denied->{error}{detail}, qr/\b[Pp]olicy $deny_policy \(DROP TABLE on public\.orders\)/,
	'node-pg: error.detail names the policy');
like($denied->{error}{hint}, qr/\S/, 'node-pg: error.hint says what to do');

my $np = node_pg('DELETE FROM public.events WHERE id > $1', 7);
my $np_id = newest_request();
is($np->{error}{code}, 'AG001', 'node-pg: the parameterised DELETE is parked with AG001');
like($np->{error}{message}, qr/^DELETE on public\.events\b.*\bapproval\b/,
	'node-pg: error.message says what is parked');
like($np->{error}{message}, qr/\brequest $np_id\b/, 'node-pg: error.message has the request id');
like($np->{error}{detail}, qr/\b[Pp]olicy $events_policy \(DELETE on public\.events\)/,
	'node-pg: error.detail names the policy');
like($np->{error}{hint}, qr/agent_guard\.approve_pending\($np_id\)/,
	'node-pg: error.hint has the approval call');
like(join("\n", $np->{error}{message}, $np->{error}{detail} // '', $np->{error}{hint} // ''),
	qr/agent_guard\.wait_for_decision\($np_id\b/,
	'node-pg: the error gives the agent the call that waits for the decision');
is($node->safe_psql('postgres',
		"SELECT statement || ' ' || param_types::text || ' ' || param_values::text
		   FROM agent_guard.requests WHERE id = $np_id"),
	'DELETE FROM public.events WHERE id > $1 {23} {7}',
	'node-pg: the request stores the parameter type and value');
is(table_counts(), '10 0 10', 'node-pg: the data is intact after the parked DELETE');

is(decide("SELECT agent_guard.approve_pending($np_id)"), 'executed',
	'psql: the human approves the parameterised DELETE');
my $np_wait = node_pg('SELECT * FROM agent_guard.wait_for_decision($1, $2)', $np_id, '10 seconds');
is_deeply([ map { [ $_->{status}, $_->{rows} ] } @{ $np_wait->{rows} // [] } ],
	[ [ 'executed', 3 ] ],
	'node-pg: wait_for_decision($1, $2) shows it executed, 3 rows');
is($node->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM public.events'),
	'1,2,3,4,5,6,7', 'node-pg: the approved DELETE ran with its parameter');

#
# psql
#
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"DROP TABLE public.orders;\n\\echo SQLSTATE=:LAST_ERROR_SQLSTATE",
	extra_params => [ '-U', $agent ], on_error_stop => 0);
note("psql shows for DROP TABLE:\n$stderr");
is($stdout, 'SQLSTATE=42501', 'psql: the DROP TABLE is denied with 42501');
like($stderr,
	qr/^psql:<stdin>:1: ERROR:  DROP TABLE on public\.orders\b.*\nDETAIL:  .*\b[Pp]olicy $deny_policy\b.*\nHINT:  \S.*$/,
	'psql: ERROR, DETAIL with the policy, HINT');

($ret, $stdout, $stderr) = $node->psql('postgres',
	"DELETE FROM public.orders;\n\\echo SQLSTATE=:LAST_ERROR_SQLSTATE",
	extra_params => [ '-U', $agent ], on_error_stop => 0);
my $psql_id = newest_request();
note("psql shows for DELETE:\n$stderr");
is($stdout, 'SQLSTATE=AG001', 'psql: the DELETE is parked with AG001');
like($stderr,
	qr/^psql:<stdin>:1: ERROR:  DELETE WITHOUT WHERE on public\.orders\b.*\bapproval\b.*\nDETAIL:  .*\b[Pp]olicy $destructive_policy\b.*\nHINT:  .*agent_guard\.approve_pending\($psql_id\).*$/,
	'psql: ERROR, DETAIL with the policy, HINT with the approval call');
like($stderr, qr/^psql:<stdin>:1: ERROR:  .*\brequest $psql_id\b/,
	'psql: the request id is in the primary message');
like($stderr, qr/agent_guard\.wait_for_decision\($psql_id\b/,
	'psql: the error gives the agent the call that waits for the decision');
is(table_counts(), '10 0 7', 'psql: the data is intact after the refusals');

$node->stop;
done_testing();
