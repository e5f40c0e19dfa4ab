# Copyright (c) agent_guard authors

# Hot standby: policies and agent registrations (security labels in the
# shared catalog pg_shseclabel) replicate to a streaming standby, and so do
# later changes to them (freeze, a new agent, a dropped policy), which apply
# to the standby's next statement.  On the standby the guard still refuses
# what it refuses on the primary, before PostgreSQL's own read-only error:
# destructive statements (AG001, with a message saying no request could be
# stored), denied writes, a function denied by an EXECUTE policy (which
# PostgreSQL would run in read-only mode), agent_guard.* settings, and every
# statement of a frozen agent.  Each refusal is one "agent_guard: {json}"
# line in the standby's server log, and nothing is ever written: no writer
# process, no attempt to start one, no new row on the primary.  The
# standby's circuit breakers count its own refusals and can be reset there.
# After promotion refusals are stored in audit_log again, parking creates
# requests and the recycle bin works.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AgentGuardTAP;
use JSON::PP;

my $agent = 'regress_sb_bot';
my $agent2 = 'regress_sb_bot2';
my $agent3 = 'regress_sb_bot3';

# as $user on $node, with verbose errors (their SQLSTATE in the text)
sub run_sql
{
	my ($node, $sql, $user) = @_;
	return AgentGuardTAP::run_sql($node, 'postgres', $sql, $user, '-v', 'VERBOSITY=verbose');
}

# Run $sql in an open background_psql session; returns (sqlstate, stderr).
sub session_sql
{
	my ($session, $sql) = @_;
	$session->{stderr} = '';
	my $out = $session->query("$sql\n\\echo SQLSTATE=:SQLSTATE");
	my ($sqlstate) = $out =~ /SQLSTATE=(\w+)/;
	return ($sqlstate // '?', $session->{stderr});
}

# agent_guard JSON records in $node's server log after byte $offset.
sub log_events
{
	my ($node, $offset) = @_;
	my @events;
	foreach my $line (split /\n/, slurp_file($node->logfile, $offset))
	{
		next unless $line =~ /\bagent_guard: (\{.*)$/;
		my $json = $1;
		my $event = eval { decode_json($json) };
		ok(defined $event, "log line parses as JSON") or diag("$@: $json");
		push @events, $event if defined $event;
	}
	return @events;
}

# Writers leave after a few idle seconds: an open superuser session asks
# right after a refusal (an agent may not see backend_type).
my $writers_sql = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'agent_guard writer'};

# What the guard writes on the primary: requests, audit rows, trash.
my $stored_sql = q{SELECT (SELECT count(*) FROM agent_guard.requests) || '/' ||
	(SELECT count(*) FROM agent_guard.audit_log) || '/' ||
	(SELECT coalesce(max(seq), 0) FROM agent_guard.audit_log) || '/' ||
	(SELECT count(*) FROM agent_guard.trash)};

###########################################################################
# Primary with the extension, an agent and custom policies.
###########################################################################

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'agent_guard'
agent_guard.breaker_threshold = 100
});
$primary->start;

$primary->safe_psql('postgres', qq{
CREATE EXTENSION agent_guard;
CREATE ROLE $agent LOGIN;
CREATE ROLE $agent2 LOGIN;
CREATE ROLE $agent3 LOGIN;
CREATE TABLE public.orders (id int PRIMARY KEY, item text NOT NULL);
INSERT INTO public.orders VALUES (1, 'apple'), (2, 'pear'), (3, 'plum');
CREATE TABLE public.tmp_scratch (id int);
INSERT INTO public.tmp_scratch VALUES (1);
-- the agents own the tables: only the guard keeps them from dropping them
ALTER TABLE public.orders OWNER TO $agent;
ALTER TABLE public.tmp_scratch OWNER TO $agent;
GRANT SELECT ON public.orders TO $agent2;
SET client_min_messages = error;
SELECT agent_guard.register_agent('$agent');
SELECT agent_guard.register_agent('$agent3');
SELECT agent_guard.set_policy('INSERT', 'public.orders', 'deny', '$agent', note => 'standby tap');
SELECT agent_guard.set_policy('DROP TABLE', 'public.tmp_*', 'trash');
SELECT agent_guard.set_policy('EXECUTE', 'pg_catalog.pg_terminate_backend', 'deny');
});
my $deny_id = $primary->safe_psql('postgres',
	q{SELECT id FROM agent_guard.policies WHERE note = 'standby tap'});
my $execute_id = $primary->safe_psql('postgres',
	q{SELECT id FROM agent_guard.policies WHERE command = 'EXECUTE'});
my $orders_rows = "1|apple\n2|pear\n3|plum";

# a parked request on the primary, so the standby has one to show
my $mon = $primary->background_psql('postgres');
my ($state, $out, $err) = run_sql($primary, 'TRUNCATE public.orders;', $agent);
is($state, 'AG001', 'primary: TRUNCATE parked');
like($err, qr/approve_pending\(\d+\)/, 'primary: request stored');
is($mon->query_safe($writers_sql), '1', 'primary: a writer stored it');
$mon->quit;

###########################################################################
# Streaming standby.
###########################################################################

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
# (a window far longer than the test: breaker counts never decay in it)
$standby->append_conf('postgresql.conf', 'agent_guard.breaker_window = 3600');
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'standby is in recovery');

my $policies_sql = q{SELECT id, agent, command, object_pattern, action, max_rows,
	approvals_required, enabled, note FROM agent_guard.policies ORDER BY id};
is($standby->safe_psql('postgres', $policies_sql),
	$primary->safe_psql('postgres', $policies_sql), 'policies replicated');
is($standby->safe_psql('postgres', 'SELECT agent, mode, frozen FROM agent_guard.agents ORDER BY agent::text'),
	"$agent|enforce|f\n$agent3|enforce|f", 'agent registrations replicated (shared catalog)');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM agent_guard.pending_requests'),
	'1', 'pending request replicated');
is($standby->safe_psql('postgres', 'SELECT intact FROM agent_guard.verify_audit()'),
	't', 'verify_audit() works on the standby');

my $stored_before = $primary->safe_psql('postgres', $stored_sql);

###########################################################################
# Refusals on the standby.
###########################################################################

my $offset = -s $standby->logfile;
my @expected;    # [command, decision, statement] per refusal, in order

# a parked statement cannot be stored on a standby: still AG001, and the
# message says no request was created and why
$mon = $standby->background_psql('postgres');
($state, $out, $err) = run_sql($standby, 'DROP TABLE public.orders;', $agent);
is($state, 'AG001', 'standby: DROP TABLE refused with AG001 (before PostgreSQL\'s 25006)');
is($mon->query_safe($writers_sql), '0', 'standby: no writer process after the refusal');
like($err, qr/DROP TABLE on public\.orders .*the request could not be stored/,
	'standby: DROP TABLE message says the request was not stored');
like($err, qr/agent "$agent"/, 'standby: DROP TABLE message names the agent');
like($err, qr/no request was created: the server is in recovery/,
	'standby: DROP TABLE detail says why');
unlike($err, qr/approve_pending\(/, 'standby: no approval call offered for a request that does not exist');
push @expected, [ 'DROP TABLE', 'parked', 'DROP TABLE public.orders' ];

($state, $out, $err) = run_sql($standby, 'DELETE FROM public.orders;', $agent);
is($state, 'AG001', 'standby: DELETE without WHERE refused with AG001');
like($err, qr/DELETE WITHOUT WHERE on public\.orders .*the request could not be stored/,
	'standby: DELETE without WHERE message');
push @expected, [ 'DELETE WITHOUT WHERE', 'parked', 'DELETE FROM public.orders' ];

($state, $out, $err) = run_sql($standby, q{INSERT INTO public.orders VALUES (4, 'fig');}, $agent);
is($state, '42501', 'standby: denied INSERT refused with 42501 (before PostgreSQL\'s 25006)');
like($err,
	qr/INSERT on public\.orders is not allowed for agent "$agent": policy $deny_id denies it/,
	'standby: denied INSERT message names the policy');
push @expected, [ 'INSERT', 'denied', q{INSERT INTO public.orders VALUES (4, 'fig')} ];

# read-only mode would run this function; the EXECUTE policy does not
# (PID 0 is no backend: a refusal is agent_guard's)
($state, $out, $err) = run_sql($standby, 'SELECT pg_terminate_backend(0);', $agent);
is($state, '42501', 'standby: function denied by an EXECUTE policy refused with 42501');
like($err,
	qr/EXECUTE on pg_catalog\.pg_terminate_backend is not allowed for agent "$agent": policy $execute_id denies it/,
	'standby: EXECUTE refusal message');
push @expected, [ 'EXECUTE', 'denied', 'SELECT pg_terminate_backend(0)' ];

# settings can be changed in read-only mode; agent_guard's never by an agent
($state, $out, $err) = run_sql($standby, 'SET agent_guard.log_statement = off;', $agent);
is($state, '42501', 'standby: SET agent_guard.log_statement refused with 42501');
like($err, qr/agent_guard never allows it/, 'standby: SET refusal message');
push @expected, [ 'SET', 'denied', 'SET agent_guard.log_statement = off' ];

# the recycle bin cannot move a table on a standby: there the trash policy
# refuses like deny (not a lock failure from halfway through moving the
# table), and the log records a denial, not a trashed table
($state, $out, $err) = run_sql($standby, 'DROP TABLE public.tmp_scratch;', $agent);
is($state, '42501', 'standby: DROP TABLE under the trash policy is refused cleanly')
  or diag($err);
push @expected, [ 'DROP TABLE', 'denied', 'DROP TABLE public.tmp_scratch' ];

# reads work
($state, $out, $err) = run_sql($standby, 'SELECT id, item FROM public.orders ORDER BY id;', $agent);
is($state, '00000', 'standby: agent reads');
is($out, $orders_rows, 'standby: agent sees the rows');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM public.tmp_scratch'), '1',
	'standby: tmp_scratch intact');

# the server log of the standby has one JSON line per refusal
my @all_events = log_events($standby, $offset);
my @events = grep { ($_->{decision} // '') =~ /^(denied|parked)$/ } @all_events;
is_deeply(
	[ map { [ $_->{command}, $_->{decision}, $_->{statement} ] } @events ],
	\@expected, 'standby log: one agent_guard line per refusal, in order')
  or diag(explain(\@all_events));
foreach my $e (@events)
{
	is($e->{agent}, $agent, "standby log: agent of $e->{command}");
	ok(!defined $e->{seq}, "standby log: $e->{command} has no seq (nothing stored)");
}
my @trashed = grep { ($_->{decision} // '') eq 'trashed' } @all_events;
is(scalar @trashed, 0, 'standby log: nothing claims to have been trashed');

# never tries to write: no writer is started or waited for; the one line
# per parked refusal that says why no request exists is all there is
my $log = slurp_file($standby->logfile, $offset);
unlike($log, qr/background worker "agent_guard writer"|could not start the agent_guard writer/,
	'standby log: no attempt to start a writer');
unlike($log, qr/write queue stayed full|could not store the audit record/,
	'standby log: no failed attempt to store an audit record');
my @not_stored = $log =~ /could not store an approval request: the server is in recovery/g;
is(scalar @not_stored, 2, 'standby log: one "could not store" line per parked refusal, no more');

# nothing was written anywhere
is($mon->query_safe($writers_sql), '0', 'standby: still no writer process');
$mon->quit;
is($primary->safe_psql('postgres', $stored_sql), $stored_before,
	'primary: no new request, audit or trash row after the standby refusals');
is($primary->safe_psql('postgres', 'SELECT id, item FROM public.orders ORDER BY id'),
	$orders_rows, 'primary: orders intact');

# administration functions fail as writes in a read-only transaction
($state, $out, $err) = run_sql($standby,
	q{SELECT agent_guard.set_policy('DELETE', 'public.orders', 'deny');}, 'postgres');
is($state, '25006', 'standby: set_policy() is refused as a write in a read-only transaction');
# (registrations are security labels: these write the shared catalog)
foreach my $call ("freeze('$agent')", "register_agent('$agent2')")
{
	($state, $out, $err) = run_sql($standby, "SELECT agent_guard.$call;", 'postgres');
	is($state, '25006', "standby: $call is refused as a write in a read-only transaction")
	  or diag($err);
}
is($standby->safe_psql('postgres', 'SELECT agent, frozen FROM agent_guard.agents ORDER BY agent::text'),
	"$agent|f\n$agent3|f", 'standby: registrations unchanged');
# the pending request is visible on the standby, but decided on the primary
my $pending_id = $standby->safe_psql('postgres', 'SELECT id FROM agent_guard.pending_requests');
($state, $out, $err) = run_sql($standby, "SELECT agent_guard.approve_pending($pending_id);", 'postgres');
is($state, '25006', 'standby: approve_pending() is refused as a write in a read-only transaction')
  or diag($err);
is($standby->safe_psql('postgres', "SELECT status FROM agent_guard.requests WHERE id = $pending_id"),
	'pending', 'standby: the request stays pending');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM public.orders'), '3',
	'standby: nothing was truncated');

###########################################################################
# Changes made on the primary apply on the standby's next statement.
###########################################################################

# a new agent: its registration replays, and the standby guards it, in a
# session that was already open too
my $open2 = $standby->background_psql('postgres', on_error_stop => 0,
	extra_params => [ '-U', $agent2 ]);
($state, $err) = session_sql($open2, 'SELECT pg_terminate_backend(0);');
is($state, '00000', 'standby: not yet an agent, agent2 runs the function');
$primary->safe_psql('postgres',
	"SET client_min_messages = error; SELECT agent_guard.register_agent('$agent2')");
$primary->wait_for_catchup($standby);
($state, $err) = session_sql($open2, 'SELECT pg_terminate_backend(0);');
is($state, '42501', 'standby: registered on the primary, agent2 is refused in its open session');
$open2->quit;
($state, $out, $err) = run_sql($standby, 'SELECT pg_terminate_backend(0);', $agent2);
is($state, '42501', 'standby: and in a new session');

# freeze() replays too: the frozen agent may not even read on the standby
$primary->safe_psql('postgres', "SELECT agent_guard.freeze('$agent')");
$primary->wait_for_catchup($standby);
$offset = -s $standby->logfile;
($state, $out, $err) = run_sql($standby, 'SELECT count(*) FROM public.orders;', $agent);
is($state, 'AG004', 'standby: a frozen agent may not read');
like($err, qr/agent "$agent" is frozen/, 'standby: frozen message');
@events = grep { ($_->{decision} // '') eq 'frozen' } log_events($standby, $offset);
is(scalar @events, 1, 'standby log: the frozen refusal is logged');
$primary->safe_psql('postgres', "SELECT agent_guard.unfreeze('$agent')");
$primary->wait_for_catchup($standby);
($state, $out, $err) = run_sql($standby, 'SELECT count(*) FROM public.orders;', $agent);
is($out, '3', 'standby: unfrozen on the primary, the agent reads again');

# a dropped policy, seen by a session open on the standby (its policy
# cache is invalidated by the replayed commit): the INSERT is no longer the
# guard's to refuse, and PostgreSQL refuses it as a write on a standby
my $open1 = $standby->background_psql('postgres', on_error_stop => 0,
	extra_params => [ '-U', $agent ]);
($state, $err) = session_sql($open1, q{INSERT INTO public.orders VALUES (4, 'fig');});
is($state, '42501', 'standby: open session, INSERT denied by the policy');
$primary->safe_psql('postgres', "SELECT agent_guard.drop_policy($deny_id)");
$primary->wait_for_catchup($standby);
($state, $err) = session_sql($open1, q{INSERT INTO public.orders VALUES (4, 'fig');});
is($state, '25006', 'standby: policy dropped on the primary, INSERT meets PostgreSQL\'s read-only error');
$open1->quit;
is($standby->safe_psql('postgres', 'SELECT id, item FROM public.orders ORDER BY id'),
	$orders_rows, 'standby: orders intact');
$primary->safe_psql('postgres',
	"SELECT agent_guard.set_policy('INSERT', 'public.orders', 'deny', '$agent', note => 'standby tap')");
$deny_id = $primary->safe_psql('postgres',
	q{SELECT id FROM agent_guard.policies WHERE note = 'standby tap'});

# the standby's own circuit breakers (shared memory) count its refusals;
# a trip is logged, and an administrator can reset it on the standby
my $standby_stored = $primary->safe_psql('postgres', $stored_sql);
$standby->append_conf('postgresql.conf', 'agent_guard.breaker_threshold = 2');
$standby->reload;
$standby->poll_query_until('postgres',
	q{SELECT current_setting('agent_guard.breaker_threshold') = '2'});
$offset = -s $standby->logfile;
($state, $out, $err) = run_sql($standby, 'SELECT pg_terminate_backend(0);', $agent3)
  foreach 1 .. 2;
is($standby->safe_psql('postgres', "SELECT agent_guard.breaker_tripped('$agent3')"), 't',
	'standby: two refusals tripped agent3\'s breaker on the standby');
($state, $out, $err) = run_sql($standby, 'DROP TABLE public.orders;', $agent3);
is($state, 'AG003', 'standby: the tripped agent is stopped with AG003');
@events = log_events($standby, $offset);
is_deeply([ map { $_->{decision} } @events ], [ 'denied', 'denied', 'breaker_tripped', 'breaker' ],
	'standby log: the refusals, the trip and the stopped statement')
  or diag(explain(\@events));
is($primary->safe_psql('postgres', "SELECT agent_guard.breaker_tripped('$agent3')"), 'f',
	'primary: its own breaker for agent3 is not tripped');
is($standby->safe_psql('postgres', "SELECT agent_guard.reset_breaker('$agent3')"), 't',
	'standby: reset_breaker() works on the standby');
is($standby->safe_psql('postgres', "SELECT agent_guard.breaker_tripped('$agent3')"), 'f',
	'standby: breaker reset');
$standby->append_conf('postgresql.conf', 'agent_guard.breaker_threshold = 100');
$standby->reload;
$standby->poll_query_until('postgres',
	q{SELECT current_setting('agent_guard.breaker_threshold') = '100'});
is($primary->safe_psql('postgres', $stored_sql), $standby_stored,
	'primary: still no new request, audit or trash row from the standby');

###########################################################################
# Promotion turns full function back on.
###########################################################################

$primary->wait_for_catchup($standby);
$primary->stop;
$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'standby promoted');

my $requests_before = $standby->safe_psql('postgres', 'SELECT count(*) FROM agent_guard.requests');
my $seq_before = $standby->safe_psql('postgres', 'SELECT max(seq) FROM agent_guard.audit_log');
$mon = $standby->background_psql('postgres');
($state, $out, $err) = run_sql($standby, 'DROP TABLE public.orders;', $agent);
is($state, 'AG001', 'promoted: DROP TABLE parked');
is($mon->query_safe($writers_sql), '1', 'promoted: a writer stored it');
$mon->quit;
my ($request_id) = $err =~ /approve_pending\((\d+)\)/;
ok(defined $request_id, 'promoted: the request was stored') or diag($err);
$request_id //= 0;
is($standby->safe_psql('postgres',
		"SELECT command, status, agent FROM agent_guard.requests WHERE id = $request_id"),
	"DROP TABLE|pending|$agent", 'promoted: request row is pending');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM agent_guard.requests'),
	$requests_before + 1, 'promoted: one new request');
is($standby->safe_psql('postgres',
		"SELECT decision FROM agent_guard.audit_log WHERE request_id = $request_id"),
	'parked', 'promoted: the parked decision is audited');

($state, $out, $err) = run_sql($standby, q{INSERT INTO public.orders VALUES (4, 'fig');}, $agent);
is($state, '42501', 'promoted: denied INSERT');
($state, $out, $err) = run_sql($standby, 'SELECT pg_terminate_backend(0);', $agent);
is($state, '42501', 'promoted: denied EXECUTE');
is($standby->safe_psql('postgres',
		"SELECT string_agg(command || ':' || decision, ',' ORDER BY seq) FROM agent_guard.audit_log
		  WHERE seq > $seq_before AND agent = '$agent'"),
	'DROP TABLE:parked,INSERT:denied,EXECUTE:denied',
	'promoted: each refusal is stored in audit_log');

($state, $out, $err) = run_sql($standby, 'DROP TABLE public.tmp_scratch;', $agent);
is($state, '00000', 'promoted: DROP TABLE under the trash policy moves it to the bin');
is($standby->safe_psql('postgres',
		q{SELECT original_name FROM agent_guard.trash ORDER BY id DESC LIMIT 1}),
	'tmp_scratch', 'promoted: trash entry');
is($standby->safe_psql('postgres', "SELECT agent_guard.reject_pending($request_id, 'no')"),
	'rejected', 'promoted: a request parked after promotion can be decided');
is($standby->safe_psql('postgres', 'SELECT intact FROM agent_guard.verify_audit()'),
	't', 'promoted: audit chain intact');
is($standby->safe_psql('postgres', 'SELECT id, item FROM public.orders ORDER BY id'),
	$orders_rows, 'promoted: orders intact');

$standby->stop;
done_testing();
