# NOTIFY agent_guard_pending: sent once per new request, after it commits,
# with a JSON payload a chat bot or pager can use.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('notify');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'agent_guard'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION agent_guard;
	CREATE ROLE regress_notify_bot LOGIN;
	CREATE TABLE public.jobs (id int);
	INSERT INTO public.jobs SELECT generate_series(1, 10);
	GRANT ALL ON public.jobs TO regress_notify_bot;
	SET client_min_messages = error;
	SELECT agent_guard.register_agent('regress_notify_bot');
});

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN agent_guard_pending');

# the agent's statement is parked; the request is committed by the writer
my ($ret, $out, $err) = $node->psql('postgres', 'DELETE FROM public.jobs',
	extra_params => [ '-U', 'regress_notify_bot' ]);
like($err, qr/waits for approval/, 'DELETE without WHERE is parked');
my ($request_id) = $err =~ /as request (\d+)/;
ok($request_id, 'the error names the request');

# psql shows notifications after the next command it runs
my $seen = '';
for (my $i = 0; $i < 50 && $seen !~ /agent_guard_pending/; $i++)
{
	$seen .= $listener->query('SELECT 1');
	$seen .= $listener->{stdout} // '';
	usleep(100_000) if $seen !~ /agent_guard_pending/;
}
like($seen, qr/Asynchronous notification "agent_guard_pending" with payload/,
	'the listener got agent_guard_pending');
my ($payload) = $seen =~ /with payload "(\{.*?\})" received/;
ok(defined $payload, 'the payload is a JSON object');
my $event = decode_json($payload // '{}');
is($event->{id}, $request_id, 'payload id is the request id');
is($event->{agent}, 'regress_notify_bot', 'payload names the agent');
is($event->{command}, 'DELETE WITHOUT WHERE', 'payload names the command');
is_deeply($event->{objects}, ['public.jobs'], 'payload lists the objects');

# a request that is committed exists when the notification arrives
is($node->safe_psql('postgres',
		"SELECT status FROM agent_guard.requests WHERE id = $request_id"),
	'pending', 'the notified request is stored');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.jobs'), '10', 'data intact');

# a denied statement makes no request and no notification
$node->safe_psql('postgres', q{SELECT agent_guard.set_policy('TRUNCATE TABLE', 'public.jobs', 'deny')});
$node->psql('postgres', 'TRUNCATE public.jobs', extra_params => [ '-U', 'regress_notify_bot' ]);
my $more = $listener->query('SELECT 1');
unlike($more, qr/agent_guard_pending/, 'no notification for a denial');

$listener->quit;
$node->stop;
done_testing();
