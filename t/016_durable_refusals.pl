
# Copyright (c) agent_guard authors

# A refusal and a parked request the agent was told about survive a crash
# even with synchronous_commit = off: the writer flushes its commit before
# it answers a session that waits, whatever the server's setting.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $agent = 'regress_durable_bot';

my $node = PostgreSQL::Test::Cluster->new('durable');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'agent_guard'
synchronous_commit = off
wal_writer_delay = '10s'
lc_messages = 'C'
});
$node->start;

$node->safe_psql('postgres', qq{
	CREATE EXTENSION agent_guard;
	CREATE ROLE $agent LOGIN;
	CREATE TABLE public.t (id int);
	INSERT INTO public.t VALUES (1), (2);
	GRANT ALL ON public.t TO $agent;
	SET client_min_messages = error;
	SELECT agent_guard.register_agent('$agent');
	SELECT agent_guard.set_policy('INSERT', 'public.t', 'deny');
});

my ($ret, $out, $err) = $node->psql('postgres',
	'INSERT INTO public.t VALUES (3) /* crash-tag-1 */',
	extra_params => [ '-U', $agent ]);
like($err, qr/is not allowed for agent/, 'the INSERT is refused');
($ret, $out, $err) = $node->psql('postgres', 'DELETE FROM public.t /* crash-tag-2 */',
	extra_params => [ '-U', $agent ]);
like($err, qr/waits for approval as request (\d+)/, 'the DELETE is parked');

# no clean shutdown: what was not flushed is lost
$node->stop('immediate');
$node->start;

is($node->safe_psql('postgres',
	q{SELECT string_agg(decision, ',' ORDER BY seq) FROM agent_guard.audit_log
	   WHERE statement LIKE '%crash-tag%'}),
	'denied,parked', 'both refusals the agent was told of are still recorded');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM agent_guard.requests WHERE statement LIKE '%crash-tag-2%'}),
	'1', 'the parked request survived the crash');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.t'), '2', 'the data is intact');
is($node->safe_psql('postgres', 'SELECT intact FROM agent_guard.verify_audit()'), 't',
	'the audit chain verifies');

$node->stop;
done_testing();
