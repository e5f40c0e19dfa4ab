
# Copyright (c) agent_guard authors

# Preload: agent_guard refuses to load outside shared_preload_libraries;
# preloaded, it guards agent sessions, keeps its registry and policies across
# a restart, keeps agents read-only in databases without the extension, and
# writes one parseable JSON line to the server log per refused statement.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AgentGuardTAP qw(run_sql);
use JSON::PP;

my $agent = 'regress_bot';
my $human = 'regress_human';
my $preload_msg = 'agent_guard must be loaded via shared_preload_libraries';

# agent_guard JSON records in the server log after byte $offset, parsed.
sub log_events
{
	my ($node, $offset) = @_;
	my @events;
	foreach my $line (split /\n/, slurp_file($node->logfile, $offset))
	{
		next unless $line =~ /\bagent_guard: (\{.*)$/;
		my $json = $1;
		my $event = eval { decode_json($json) };
		ok(defined $event, "log line parses as JSON: $json")
		  or diag("JSON error: $@");
		push @events, $event if defined $event;
	}
	return @events;
}

# Every refusal issued by agent_refused(), for the final log check.
my @refusals;

# Run one statement as $user and check that agent_guard refuses it with
# $sqlstate and an error matching $message, and that exactly one JSON line
# about it (decision $decision, command $command) reaches the server log.
sub agent_refused
{
	my ($node, $db, $user, $sql, $sqlstate, $message, $command, $decision,
		$test) = @_;
	my $offset = -s $node->logfile;
	my ($got_state, $stdout, $stderr) = run_sql($node, $db, $sql, $user);

	is($got_state, $sqlstate, "$test: SQLSTATE $sqlstate");
	like($stderr, $message, "$test: error message");

	# the statement's own text, without the terminating semicolon
	my $statement = $sql =~ s/;\s*\z//r;
	my @events = log_events($node, $offset);
	my $event = $events[0] // {};
	if (is(scalar @events, 1, "$test: one agent_guard log line"))
	{
		is($event->{decision}, $decision, "$test: logged decision");
		# undef $command: the command's name is not what is being tested
		$command //= $event->{command};
		is($event->{command}, $command, "$test: logged command");
		is($event->{statement}, $statement, "$test: logged statement");
		is($event->{agent}, $user, "$test: logged agent");
		is($event->{session_user}, $user, "$test: logged session user");
		is($event->{database}, $db, "$test: logged database");
	}
	else
	{
		diag(explain(\@events));
	}
	push @refusals, { command => $command, decision => $decision,
		statement => $statement };
	return $event;
}

# Run $sql as $user and check it succeeds.
sub run_ok
{
	my ($node, $db, $user, $sql, $test) = @_;
	my ($state, $stdout, $stderr) = run_sql($node, $db, $sql, $user);
	is($state, '00000', $test) or diag($stderr);
	return $stdout;
}


###########################################################################
# 1. Without shared_preload_libraries, loading is refused.
###########################################################################

my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;

my ($state, $stdout, $stderr) = run_sql($plain, 'postgres', "LOAD 'agent_guard';");
is($state, '55000', 'LOAD outside shared_preload_libraries: SQLSTATE 55000');
like($stderr, qr/ERROR:  \Q$preload_msg\E\n/,
	'LOAD outside shared_preload_libraries: error message');
like($stderr,
	qr/HINT:  Add agent_guard to shared_preload_libraries in postgresql\.conf and restart the server\./,
	'LOAD outside shared_preload_libraries: hint');

($state, $stdout, $stderr) =
  run_sql($plain, 'postgres', 'CREATE EXTENSION agent_guard;');
is($state, '55000',
	'CREATE EXTENSION outside shared_preload_libraries: SQLSTATE 55000');
like($stderr, qr/ERROR:  \Q$preload_msg\E\n/,
	'CREATE EXTENSION outside shared_preload_libraries: error message');

is( $plain->safe_psql(
		'postgres',
		"SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'agent_guard'),
		        (SELECT count(*) FROM pg_namespace WHERE nspname = 'agent_guard')"),
	'0|0',
	'failed CREATE EXTENSION left nothing behind');

# session_preload_libraries is refused too: the session cannot start
my $ret;
($ret, $stdout, $stderr) = $plain->psql(
	'postgres', 'SELECT 1',
	connstr => $plain->connstr('postgres')
	  . " options='-c session_preload_libraries=agent_guard'");
isnt($ret, 0, 'session_preload_libraries: connection refused');
like($stderr, qr/FATAL:  \Q$preload_msg\E\n/,
	'session_preload_libraries: error message');

# the server is unharmed, and a second attempt in a new session fails the same way
($state, $stdout, $stderr) = run_sql($plain, 'postgres', "LOAD 'agent_guard';");
is($state, '55000', 'LOAD refused again in a new session');
is($plain->safe_psql('postgres', 'SELECT 1'), '1', 'plain server still up');

$plain->stop;


###########################################################################
# 2. Preloaded: the guard refuses an agent's DROP TABLE.
###########################################################################

my $node = PostgreSQL::Test::Cluster->new('guarded');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'agent_guard'");
$node->start;

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION agent_guard;
CREATE ROLE $agent LOGIN;
CREATE ROLE $human LOGIN;
CREATE TABLE public.orders (id int PRIMARY KEY, item text NOT NULL);
INSERT INTO public.orders VALUES (1, 'apple'), (2, 'pear'), (3, 'plum');
CREATE TABLE public.notes (id int, body text);
-- the agent owns orders: without agent_guard it could drop it
ALTER TABLE public.orders OWNER TO $agent;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.notes TO $agent;
});

my $orders_rows = '1|apple
2|pear
3|plum';

# ownership makes register_agent warn; the warnings are posture's business
($state, $stdout, $stderr) = run_sql($node, 'postgres',
	"SET client_min_messages = error;
	 SELECT agent_guard.register_agent('$agent');");
is($state, '00000', 'register_agent');
is($node->safe_psql('postgres',
		'SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text'),
	"$agent|enforce", 'agent registered');

# the agent can read its table
is($node->safe_psql('postgres', 'SELECT current_user', extra_params => [ '-U', $agent ]),
	$agent, 'agent connects as itself');
is( run_ok($node, 'postgres', $agent, 'SELECT id, item FROM public.orders ORDER BY id;',
		'agent SELECT allowed'),
	$orders_rows, 'agent reads orders');

agent_refused(
	$node, 'postgres', $agent, 'DROP TABLE public.orders;', 'AG001',
	qr/ERROR:  DROP TABLE on public\.orders by agent "$agent" was not run: it waits for approval as request \d+\n/,
	'DROP TABLE', 'parked', 'agent DROP TABLE before restart');
is($node->safe_psql('postgres', 'SELECT id, item FROM public.orders ORDER BY id'),
	$orders_rows, 'orders intact after refused DROP TABLE');

# a custom policy: this agent may not INSERT into orders
is( $node->safe_psql(
		'postgres',
		"SELECT agent_guard.set_policy('INSERT', 'public.orders', 'deny', '$agent', note => 'tap')"
	),
	'7',
	'custom policy created');

my $insert_orders = q{INSERT INTO public.orders VALUES (4, 'it''s a "quoted" \\ item');};
agent_refused(
	$node, 'postgres', $agent, $insert_orders, '42501',
	qr/ERROR:  INSERT on public\.orders is not allowed for agent "$agent": policy 7 denies it\nDETAIL:  Policy 7 \(INSERT on public\.orders\) denies it\./,
	'INSERT', 'denied', 'agent INSERT under custom deny policy');
is($node->safe_psql('postgres', 'SELECT id, item FROM public.orders ORDER BY id'),
	$orders_rows, 'orders intact after refused INSERT');

# other writes stay allowed
run_ok($node, 'postgres', $agent, q{INSERT INTO public.notes VALUES (1, 'before restart');},
	'agent INSERT into notes allowed');


###########################################################################
# 3. After a restart: registry, policies and refusals persist.
###########################################################################

$node->restart;

is($node->safe_psql('postgres',
		'SELECT agent, mode FROM agent_guard.agents ORDER BY agent::text'),
	"$agent|enforce", 'agent still registered after restart');
is( $node->safe_psql(
		'postgres',
		"SELECT id, agent, command, object_pattern, action FROM agent_guard.policies WHERE id = 7"
	),
	"7|$agent|INSERT|public.orders|deny",
	'custom policy still present after restart');

agent_refused(
	$node, 'postgres', $agent, $insert_orders, '42501',
	qr/ERROR:  INSERT on public\.orders is not allowed for agent "$agent": policy 7 denies it\nDETAIL:  Policy 7 \(INSERT on public\.orders\) denies it\./,
	'INSERT', 'denied', 'agent INSERT under custom deny policy after restart');
agent_refused(
	$node, 'postgres', $agent, 'DROP TABLE public.orders;', 'AG001',
	qr/ERROR:  DROP TABLE on public\.orders by agent "$agent" was not run: it waits for approval as request \d+\n/,
	'DROP TABLE', 'parked', 'agent DROP TABLE after restart');
agent_refused(
	$node, 'postgres', $agent, 'TRUNCATE public.orders;', 'AG001',
	qr/ERROR:  TRUNCATE TABLE on public\.orders by agent "$agent" was not run: it waits for approval as request \d+\n/,
	'TRUNCATE TABLE', 'parked', 'agent TRUNCATE after restart');
agent_refused(
	$node, 'postgres', $agent, 'DELETE FROM public.orders;', 'AG001',
	qr/ERROR:  DELETE WITHOUT WHERE on public\.orders by agent "$agent" was not run: it waits for approval as request \d+\n/,
	'DELETE WITHOUT WHERE', 'parked', 'agent DELETE without WHERE after restart');
is($node->safe_psql('postgres', 'SELECT id, item FROM public.orders ORDER BY id'),
	$orders_rows, 'orders intact after refusals following restart');

run_ok($node, 'postgres', $agent, q{INSERT INTO public.notes VALUES (2, 'after restart');},
	'agent INSERT into notes still allowed after restart');
is($node->safe_psql('postgres', 'SELECT id, body FROM public.notes ORDER BY id'),
	"1|before restart\n2|after restart", 'allowed inserts ran');


###########################################################################
# 4. A database without the extension: agents may only read.
###########################################################################

$node->safe_psql('postgres', 'CREATE DATABASE otherdb');
$node->safe_psql(
	'otherdb', qq{
CREATE TABLE public.items (id int PRIMARY KEY, v text);
INSERT INTO public.items VALUES (1, 'a'), (2, 'b');
CREATE TABLE public.bot_owned (id int);
ALTER TABLE public.bot_owned OWNER TO $agent;
CREATE SEQUENCE public.ids;
GRANT USAGE, SELECT, UPDATE ON SEQUENCE public.ids TO $agent;
CREATE TABLE public.human_owned (id int);
ALTER TABLE public.human_owned OWNER TO $human;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO $agent, $human;
GRANT CREATE ON SCHEMA public TO $agent, $human;
});
is($node->safe_psql('otherdb',
		"SELECT count(*) FROM pg_extension WHERE extname = 'agent_guard'"),
	'0', 'otherdb has no agent_guard extension');

my $items_rows = "1|a\n2|b";
is( run_ok($node, 'otherdb', $agent, 'SELECT id, v FROM public.items ORDER BY id;',
		'agent SELECT allowed in otherdb'),
	$items_rows, 'agent reads items in otherdb');

my $not_installed =
  qr/agent_guard is not installed in this database, so agents are limited to reading/;
foreach my $case (
	[ q{INSERT INTO public.items VALUES (3, 'c');}, 'INSERT', 'public.items' ],
	[ q{UPDATE public.items SET v = 'z' WHERE id = 1;}, 'UPDATE', 'public.items' ],
	[ 'DELETE FROM public.items WHERE id = 1;', 'DELETE', 'public.items' ],
	[ 'CREATE TABLE public.bot_new (id int);', 'CREATE TABLE', 'public.bot_new' ],
	[ 'DROP TABLE public.bot_owned;', 'DROP TABLE', 'public.bot_owned' ])
{
	my ($sql, $command, $object) = @$case;
	my $event = agent_refused(
		$node, 'otherdb', $agent, $sql, '42501',
		qr/ERROR:  \Q$command on $object\E is not allowed for agent "$agent": agent_guard never allows it\nDETAIL:  .*$not_installed/,
		$command, 'denied', "agent $command in otherdb");
	like($event->{reason} // '', $not_installed, "agent $command in otherdb: logged reason");
}

# writes made through functions are writes too: read-only means what it
# means in a read-only transaction
foreach my $sql (
	q{SELECT nextval('public.ids');},
	q{SELECT setval('public.ids', 100);},
	'SELECT lo_create(0);')
{
	agent_refused(
		$node, 'otherdb', $agent, $sql, '42501',
		qr/ERROR:  .* is not allowed for agent "$agent": agent_guard never allows it\nDETAIL:  .*$not_installed/,
		undef, 'denied', "agent $sql in otherdb");
}

is($node->safe_psql('otherdb', 'SELECT id, v FROM public.items ORDER BY id'),
	$items_rows, 'items intact in otherdb');
is( $node->safe_psql(
		'otherdb',
		'SELECT last_value, is_called FROM public.ids;
		 SELECT count(*) FROM pg_catalog.pg_largeobject_metadata'),
	"1|f\n0",
	'sequence and large objects untouched in otherdb');
is( $node->safe_psql(
		'otherdb',
		"SELECT to_regclass('public.bot_owned') IS NOT NULL, to_regclass('public.bot_new') IS NULL"
	),
	't|t',
	'refused DDL did not run in otherdb');

# a role that is not an agent is unaffected there, and leaves no agent_guard record
my $offset = -s $node->logfile;
run_ok($node, 'otherdb', $human, q{INSERT INTO public.items VALUES (3, 'c');},
	'non-agent INSERT in otherdb');
run_ok($node, 'otherdb', $human, q{UPDATE public.items SET v = 'z' WHERE id = 1;},
	'non-agent UPDATE in otherdb');
run_ok($node, 'otherdb', $human, 'DELETE FROM public.items WHERE id = 2;',
	'non-agent DELETE in otherdb');
run_ok($node, 'otherdb', $human, 'CREATE TABLE public.human_new (id int);',
	'non-agent CREATE TABLE in otherdb');
run_ok($node, 'otherdb', $human, 'DROP TABLE public.human_owned;',
	'non-agent DROP TABLE in otherdb');
is($node->safe_psql('otherdb', 'SELECT id, v FROM public.items ORDER BY id'),
	"1|z\n3|c", 'non-agent writes ran in otherdb');
is( $node->safe_psql(
		'otherdb',
		"SELECT to_regclass('public.human_new') IS NOT NULL, to_regclass('public.human_owned') IS NULL"
	),
	't|t',
	'non-agent DDL ran in otherdb');
is(scalar(log_events($node, $offset)), 0, 'no agent_guard log line for the non-agent');


###########################################################################
# 5. The server log: one JSON line per refused statement.
###########################################################################

my @refused_events =
  grep { ($_->{decision} // '') =~ /^(denied|parked)$/ } log_events($node, 0);
is(scalar @refused_events, scalar @refusals,
	'as many refusal lines in the server log as refused statements');
is_deeply(
	[ map { [ $_->{command}, $_->{decision}, $_->{statement} ] } @refused_events ],
	[ map { [ $_->{command}, $_->{decision}, $_->{statement} ] } @refusals ],
	'refusal lines match the refused statements, in order');

$node->stop;

done_testing();
