# Copyright (c) agent_guard authors

# Several databases in one cluster: A and B have agent_guard, C does not.
# One registration guards the agent in all three.  In C the agent fails
# closed to reading (SPEC section 2): writes, DDL and volatile function
# calls are refused with 42501, what hides a write from the guard meets a
# read-only transaction (25006), and each refusal is logged by the backend
# itself.  A and B each get their own writer worker and keep their own
# policies, requests and audit trail; DROP EXTENSION in A leaves B guarded
# and A read-only for the agent; a database with a writer can still be
# dropped.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AgentGuardTAP;
use Time::HiRes qw(usleep);

my $agent = 'regress_mdb_bot';

my $node = PostgreSQL::Test::Cluster->new('multidb');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'agent_guard'
agent_guard.breaker_threshold = 100
});
$node->start;

# Run $sql as $user in $db of this test's node.
sub run_sql { return AgentGuardTAP::run_sql($node, @_); }

# The writers' pids (add a WHERE on datname).
my $writer_sql = q{SELECT pid FROM (SELECT pid, datname FROM pg_stat_activity
	WHERE backend_type = 'agent_guard writer') w};

# Databases served by a writer, as "db,db".
sub writer_dbs
{
	return $node->safe_psql('postgres',
		q{SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '')
		    FROM pg_stat_activity WHERE backend_type = 'agent_guard writer'});
}

# Wait up to $secs seconds for writer_dbs() to be $want; returns what it is.
sub wait_writer_dbs
{
	my ($want, $secs) = @_;
	my $got;
	for (my $i = 0; $i < $secs * 10; $i++)
	{
		$got = writer_dbs();
		return $got if $got eq $want;
		usleep(100_000);
	}
	return $got;
}

my $items = "1|a\n2|b\n3|c";

$node->safe_psql('postgres', qq{
CREATE ROLE $agent LOGIN;
CREATE DATABASE a;
CREATE DATABASE b;
CREATE DATABASE c;
});
foreach my $db (qw(a b c))
{
	$node->safe_psql($db, qq{
CREATE TABLE public.items (id int PRIMARY KEY, v text);
INSERT INTO public.items VALUES (1, 'a'), (2, 'b'), (3, 'c');
ALTER TABLE public.items OWNER TO $agent;
});
}
$node->safe_psql($_, 'CREATE EXTENSION agent_guard') foreach qw(a b);

# one registration, made in A, holds everywhere
$node->safe_psql('a', "SET client_min_messages = error; SELECT agent_guard.register_agent('$agent')");
is($node->safe_psql('b', 'SELECT agent, mode FROM agent_guard.agents'), "$agent|enforce",
	'B sees the registration made in A');
# policies are per database: B denies INSERT, A allows it
my $b_policy = $node->safe_psql('b',
	"SELECT agent_guard.set_policy('INSERT', 'public.items', 'deny', '$agent')");

###########################################################################
# Guarded in all three.
###########################################################################

my ($state, $out, $err);
# writers leave after a few idle seconds: an open session looks right
# after each refusal (an agent may not see backend_type)
my $mon = $node->background_psql('postgres');
foreach my $db (qw(a b))
{
	($state, $out, $err) = run_sql($db, 'DROP TABLE public.items;', $agent);
	is($state, 'AG001', "$db: DROP TABLE parked");
	like($err, qr/approve_pending\(1\)/, "$db: request 1 of its own queue");
	like($mon->query_safe("$writer_sql WHERE datname = '$db'"), qr/^\d+$/,
		"$db: stored by a writer connected to $db");
	($state, $out, $err) = run_sql($db, 'DELETE FROM public.items;', $agent);
	is($state, 'AG001', "$db: DELETE without WHERE parked");
	($state, $out, $err) = run_sql($db, 'SELECT id, v FROM public.items ORDER BY id;', $agent);
	is($out, $items, "$db: agent reads");
}
($state, $out, $err) = run_sql('a', q{INSERT INTO public.items VALUES (4, 'd');}, $agent);
is($state, '00000', 'a: INSERT allowed (no policy against it in A)');
($state, $out, $err) = run_sql('b', q{INSERT INTO public.items VALUES (4, 'd');}, $agent);
is($state, '42501', "b: INSERT denied by B's own policy");
like($err, qr/[Pp]olicy $b_policy \(INSERT on public\.items\)/, 'b: names B\'s policy');

# C: no extension, read-only
($state, $out, $err) = run_sql('c', 'SELECT id, v FROM public.items ORDER BY id;', $agent);
is($out, $items, 'c: agent reads');
foreach my $sql (q{INSERT INTO public.items VALUES (4, 'd');}, 'DROP TABLE public.items;',
	'DELETE FROM public.items WHERE id = 1;')
{
	($state, $out, $err) = run_sql('c', $sql, $agent);
	is($state, '42501', "c: $sql refused with 42501");
	like($err, qr/agent_guard is not installed in this database, so agents are limited to reading/,
		"c: $sql message");
}
# writes hidden in functions: volatile calls are refused, a few harmless
# built-ins allowed; what the guard cannot see PostgreSQL refuses, since an
# agent's transaction there is read-only
$node->safe_psql('c', qq{
CREATE SEQUENCE public.items_seq;
GRANT USAGE ON SEQUENCE public.items_seq TO $agent;
CREATE FUNCTION public.add_item() RETURNS int LANGUAGE sql
	AS \$\$ INSERT INTO public.items VALUES (9, 'z') RETURNING id \$\$;
});
foreach my $sql (q{SELECT nextval('public.items_seq');}, 'SELECT public.add_item();')
{
	($state, $out, $err) = run_sql('c', $sql, $agent);
	is($state, '42501', "c: $sql refused with 42501");
	like($err, qr/limited to reading and may not call volatile functions/, "c: $sql message");
}
($state, $out, $err) = run_sql('c', 'SELECT random() < 2;', $agent);
is($out, 't', 'c: a harmless volatile built-in runs');
($state, $out, $err) = run_sql('c', 'SELECT id FROM public.items WHERE id = 1 FOR UPDATE;', $agent);
is($state, '25006', 'c: a row lock meets the read-only transaction');
is($node->safe_psql('c', 'SELECT id, v FROM public.items ORDER BY id'), $items, 'c: items intact');
is($node->safe_psql('c', q{SELECT last_value, is_called FROM public.items_seq}), '1|f',
	'c: the sequence did not move');

# C has nowhere to store a decision: the backend logs each one itself
my $log_offset = -s $node->logfile;
($state, $out, $err) = run_sql('c', 'TRUNCATE public.items;', $agent);
is($state, '42501', 'c: TRUNCATE refused');
my @c_lines = grep { /"database":"c"/ && /"decision":"denied"/ && /"command":"TRUNCATE TABLE"/ }
  split /\n/, slurp_file($node->logfile, $log_offset);
is(scalar @c_lines, 1, 'c: the refusal is one agent_guard JSON line in the server log');

is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'agent_guard writer' AND datname = 'c'}),
	'0', 'no writer for C');

# each database keeps its own records
foreach my $db (qw(a b))
{
	is($node->safe_psql($db,
			q{SELECT string_agg(DISTINCT database, ',') FROM agent_guard.audit_log}),
		$db, "$db: its audit rows are its own");
	is($node->safe_psql($db,
			qq{SELECT string_agg(command || ':' || decision, ',' ORDER BY seq)
			     FROM agent_guard.audit_log WHERE agent = '$agent'}),
		$db eq 'a'
		? 'DROP TABLE:parked,DELETE WITHOUT WHERE:parked,INSERT:allowed'
		: 'DROP TABLE:parked,DELETE WITHOUT WHERE:parked,INSERT:denied',
		"$db: its agent decisions");
	is($node->safe_psql($db, q{SELECT string_agg(id || ':' || database, ',' ORDER BY id) FROM agent_guard.requests}),
		"1:$db,2:$db", "$db: its own requests");
	is($node->safe_psql($db, 'SELECT intact FROM agent_guard.verify_audit()'), 't', "$db: chain intact");
}
is($node->safe_psql('a', 'SELECT count(*) FROM public.items'), '4', 'a: items plus the allowed row');
is($node->safe_psql('b', 'SELECT id, v FROM public.items ORDER BY id'), $items, 'b: items intact');

###########################################################################
# DROP EXTENSION in A.
###########################################################################

$node->safe_psql('a', 'DROP EXTENSION agent_guard');

($state, $out, $err) = run_sql('a', q{INSERT INTO public.items VALUES (5, 'e');}, $agent);
is($state, '42501', 'a after DROP EXTENSION: INSERT refused (read-only)');
like($err, qr/agent_guard is not installed in this database/, 'a after DROP EXTENSION: message');
($state, $out, $err) = run_sql('a', 'DROP TABLE public.items;', $agent);
is($state, '42501', 'a after DROP EXTENSION: DROP TABLE refused');
($state, $out, $err) = run_sql('a', 'SELECT count(*) FROM public.items;', $agent);
is($out, '4', 'a after DROP EXTENSION: agent reads, items intact');

($state, $out, $err) = run_sql('b', 'TRUNCATE public.items;', $agent);
is($state, 'AG001', 'b after DROP EXTENSION in A: TRUNCATE parked');
like($err, qr/approve_pending\(3\)/, 'b after DROP EXTENSION in A: request stored');
($state, $out, $err) = run_sql('b', q{INSERT INTO public.items VALUES (4, 'd');}, $agent);
is($state, '42501', 'b after DROP EXTENSION in A: INSERT still denied');
is($node->safe_psql('b',
		qq{SELECT count(*) FROM agent_guard.audit_log WHERE agent = '$agent'}),
	'5', 'b: still auditing');
is($node->safe_psql('b', 'SELECT id, v FROM public.items ORDER BY id'), $items, 'b: items intact');

# no writer is left in A
unlike(wait_writer_dbs('', 15), qr/\ba\b/, 'no writer stays in A after DROP EXTENSION');

# installed again in A: guarded and stored again
$node->safe_psql('a', 'CREATE EXTENSION agent_guard');
($state, $out, $err) = run_sql('a', 'DROP TABLE public.items;', $agent);
is($state, 'AG001', 'a re-installed: DROP TABLE parked');
like($err, qr/approve_pending\(1\)/, 'a re-installed: request stored');
like($mon->query_safe("$writer_sql WHERE datname = 'a'"), qr/^\d+$/,
	'a re-installed: A has a writer again');

###########################################################################
# A database whose writer just worked can be dropped.
###########################################################################

($state, $out, $err) = run_sql('a', 'DELETE FROM public.items;', $agent);
is($state, 'AG001', 'a: one more refusal, so its writer is up');
my ($ret, $dout, $derr) = $node->psql('postgres', 'DROP DATABASE a');
is($ret, 0, 'DROP DATABASE right after its writer stored a record') or diag($derr);
($state, $out, $err) = run_sql('b', 'DROP TABLE public.items;', $agent);
is($state, 'AG001', 'b still guarded after A was dropped');
like($err, qr/approve_pending\(4\)/, 'b: request stored');
is($node->safe_psql('b', 'SELECT id, v FROM public.items ORDER BY id'), $items, 'b: items intact');

$mon->quit;

###########################################################################
# No writer can start (no background worker slot): refusals still refuse,
# nothing claims to be stored, and the monitoring recipes of the README
# (the server-log pattern, the heartbeat query) see it.
###########################################################################

$node->append_conf('postgresql.conf', 'max_worker_processes = 0');
$node->restart;
my $log_start = -s $node->logfile;
my $b_audit = $node->safe_psql('b', 'SELECT count(*) FROM agent_guard.audit_log');
my $b_requests = $node->safe_psql('b', 'SELECT count(*) FROM agent_guard.requests');

($state, $out, $err) = run_sql('b', q{INSERT INTO public.items VALUES (4, 'd');}, $agent);
is($state, '42501', 'no writer: a denied INSERT is still refused');
($state, $out, $err) = run_sql('b', 'DROP TABLE public.items;', $agent);
is($state, 'AG001', 'no writer: DROP TABLE is still refused');
like($err, qr/the request could not be stored/, 'no writer: the agent is told no request exists');
unlike($err, qr/approve_pending\(/, 'no writer: no approval call offered');
is($node->safe_psql('b', 'SELECT id, v FROM public.items ORDER BY id'), $items, 'no writer: items intact');

# the heartbeat: an administrative change stored through the writer
$node->safe_psql('b', q{SELECT agent_guard.set_policy('READ', 'agent_guard_monitor.heartbeat', 'allow',
	note => 'heartbeat ' || now())});
is($node->safe_psql('b', q{SELECT coalesce(now() - max(ts) > interval '3 minutes', true)
		FROM agent_guard.audit_log
	   WHERE command = 'SET POLICY' AND objects = '{agent_guard_monitor.heartbeat}'}),
	't', 'no writer: the heartbeat query says the writer is not storing');
is($node->safe_psql('b', 'SELECT count(*) FROM agent_guard.audit_log'), $b_audit,
	'no writer: no audit row appeared');
is($node->safe_psql('b', 'SELECT count(*) FROM agent_guard.requests'), $b_requests,
	'no writer: no request appeared');
my $nowriter_log = slurp_file($node->logfile, $log_start);
my @could_not = $nowriter_log =~ /agent_guard could not store/g;
is(scalar @could_not, 3,
	'no writer: one "agent_guard could not store" line per record (denial, request, heartbeat)');
like($nowriter_log, qr/could not start the agent_guard writer \(max_worker_processes reached\)/,
	'no writer: the log says why');

$node->stop;
done_testing();
