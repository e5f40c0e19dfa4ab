# Kill switch and circuit breaker across sessions: freeze() ends a live
# agent session and holds across a restart; a tripped breaker stops every
# session of the agent.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('killswitch');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'agent_guard'
agent_guard.breaker_threshold = 3
agent_guard.breaker_window = 600
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION agent_guard;
	CREATE ROLE regress_ks_bot LOGIN;
	CREATE TABLE public.items (id int);
	INSERT INTO public.items SELECT generate_series(1, 10);
	GRANT ALL ON public.items TO regress_ks_bot;
	SET client_min_messages = error;
	SELECT agent_guard.register_agent('regress_ks_bot');
	SELECT agent_guard.set_policy('TRUNCATE TABLE', 'public.items', 'deny');
});

sub agent_psql
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql,
		extra_params => [ '-U', 'regress_ks_bot', '-v', 'VERBOSITY=verbose' ]);
	return ($ret, $out, $err);
}

# --- breaker: refusals in one session stop another session of the agent
my $other = $node->background_psql('postgres', extra_params => [ '-U', 'regress_ks_bot' ],
	on_error_stop => 0);
$other->query_safe('SELECT 1');
agent_psql('TRUNCATE public.items') for 1 .. 3;
is($node->safe_psql('postgres', q{SELECT agent_guard.breaker_tripped('regress_ks_bot')}),
	't', 'three refusals tripped the breaker');
$other->query('INSERT INTO public.items VALUES (100)');
like($other->{stderr}, qr/stopped by its circuit breaker/,
	'the other, already open session is stopped too');
my ($ret, $out, $err) = agent_psql('INSERT INTO public.items VALUES (101)');
like($err, qr/AG003/, 'a new session gets AG003');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.items'), '10', 'nothing was inserted');
$node->safe_psql('postgres', q{SELECT agent_guard.reset_breaker('regress_ks_bot')});
is($node->safe_psql('postgres', q{SELECT agent_guard.breaker_tripped('regress_ks_bot')}),
	'f', 'reset_breaker() cleared it');
# (stderr of the refused query may trail into this one's: judge by the table)
$other->query('INSERT INTO public.items VALUES (102)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.items'), '11',
	'after reset_breaker the open session writes again');
$other->quit;

# --- freeze: a live session is ended, new ones refused, across a restart
my $live = $node->background_psql('postgres', extra_params => [ '-U', 'regress_ks_bot' ],
	on_error_stop => 0);
$live->query_safe('SELECT 1');
my $live_pid = $live->query_safe('SELECT pg_backend_pid()');
$live_pid =~ s/\s+//g;
is($node->safe_psql('postgres', q{SELECT agent_guard.freeze('regress_ks_bot')}), '1',
	'freeze() ended one live session');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $live_pid"),
	'the live session is gone');
$live->quit;

($ret, $out, $err) = agent_psql('SELECT count(*) FROM public.items');
like($err, qr/AG004.*frozen/s, 'a new session may not even read');

$node->restart;
($ret, $out, $err) = agent_psql('SELECT count(*) FROM public.items');
like($err, qr/AG004.*frozen/s, 'still frozen after a restart');
is($node->safe_psql('postgres', q{SELECT frozen FROM agent_guard.agents}), 't',
	'agents shows it frozen');

# the freeze holds in every database, with or without the extension
$node->safe_psql('postgres', 'CREATE DATABASE other');
my ($r2, $o2, $e2) = $node->psql('other', 'SELECT 1',
	extra_params => [ '-U', 'regress_ks_bot' ]);
like($e2, qr/frozen/, 'frozen in a database without the extension too');

$node->safe_psql('postgres', q{SELECT agent_guard.unfreeze('regress_ks_bot')});
($ret, $out, $err) = agent_psql('SELECT count(*) FROM public.items');
is($out, '11', 'after unfreeze the agent reads again');

# trips and freezes were announced on agent_guard_alert and audited
is($node->safe_psql('postgres',
		q{SELECT string_agg(decision, ',' ORDER BY seq) FROM agent_guard.audit_log
		  WHERE decision IN ('breaker_tripped', 'agent_frozen', 'agent_unfrozen')}),
	'breaker_tripped,agent_frozen,agent_unfrozen', 'alerts are in the audit trail');

$node->stop;
done_testing();
