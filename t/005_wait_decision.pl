# wait_for_decision() sleeps until an approver decides, then answers at
# once: it is woken by the decision's commit, not by polling.
use strict;
use warnings;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('wait');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'agent_guard'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION agent_guard;
	CREATE ROLE regress_wait_bot LOGIN;
	CREATE ROLE regress_wait_carol LOGIN;
	CREATE TABLE public.jobs (id int);
	INSERT INTO public.jobs SELECT generate_series(1, 10);
	GRANT ALL ON public.jobs TO regress_wait_bot;
	GRANT USAGE ON SCHEMA agent_guard TO regress_wait_bot, regress_wait_carol;
	GRANT EXECUTE ON FUNCTION agent_guard.wait_for_decision(bigint, interval) TO regress_wait_bot;
	GRANT EXECUTE ON FUNCTION agent_guard.approve_pending(bigint, text),
		agent_guard.reject_pending(bigint, text) TO regress_wait_carol;
	SET client_min_messages = error;
	SELECT agent_guard.register_agent('regress_wait_bot');
});

foreach my $decision ('approve', 'reject')
{
	my ($ret, $out, $err) = $node->psql('postgres', 'DELETE FROM public.jobs',
		extra_params => [ '-U', 'regress_wait_bot' ]);
	my ($id) = $err =~ /as request (\d+)/;
	ok($id, "$decision: the agent's DELETE is parked as request $id");

	my $agent = $node->background_psql('postgres', extra_params => [ '-U', 'regress_wait_bot' ]);
	my $started = time();
	$agent->query_until(qr/waiting/, qq{\\echo waiting
SELECT status || ' ' || coalesce(rows::text, '-') FROM agent_guard.wait_for_decision($id, '60 seconds');
});
	# the agent is now asleep in wait_for_decision()
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE usename = 'regress_wait_bot' AND wait_event_type = 'Extension'})
	  or die 'the agent is not waiting';
	my $call = $decision eq 'approve'
	  ? "SELECT agent_guard.approve_pending($id)"
	  : "SELECT agent_guard.reject_pending($id, 'no')";
	$node->safe_psql('postgres', $call, extra_params => [ '-U', 'regress_wait_carol' ]);

	my $answer = $agent->query_safe('SELECT 1 AS done');
	my $elapsed = time() - $started;
	like($answer, $decision eq 'approve' ? qr/executed 10/ : qr/rejected -/,
		"$decision: the waiting agent got the decision");
	cmp_ok($elapsed, '<', 30, "$decision: it came well before the timeout");
	$agent->quit;

	$node->safe_psql('postgres', 'INSERT INTO public.jobs SELECT generate_series(1, 10)')
	  if $decision eq 'approve';
}

# a wait is cancellable
my ($ret, $out, $err) = $node->psql('postgres', 'DELETE FROM public.jobs',
	extra_params => [ '-U', 'regress_wait_bot' ]);
my ($id) = $err =~ /as request (\d+)/;
my $agent = $node->background_psql('postgres', extra_params => [ '-U', 'regress_wait_bot' ],
	on_error_stop => 0);
$agent->query_until(qr/waiting/, qq{\\echo waiting
SELECT * FROM agent_guard.wait_for_decision($id, '60 seconds');
});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity
	  WHERE usename = 'regress_wait_bot' AND wait_event_type = 'Extension'})
  or die 'the agent is not waiting';
$node->safe_psql('postgres',
	q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = 'regress_wait_bot'});
$agent->query('SELECT 1');
like($agent->{stderr}, qr/canceling statement due to user request/, 'the wait was cancelled');
$agent->quit;
is($node->safe_psql('postgres', "SELECT status FROM agent_guard.requests WHERE id = $id"),
	'pending', 'the request is still pending');

$node->stop;
done_testing();
