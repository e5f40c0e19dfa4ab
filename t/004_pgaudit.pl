# agent_guard next to pgaudit, in both load orders: register_agent() turns
# on pgaudit session logging for the agent; both record the agent's
# statements; pgaudit is unchanged for other roles.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

foreach my $order ('pgaudit,agent_guard', 'agent_guard,pgaudit')
{
	my $node = PostgreSQL::Test::Cluster->new("pgaudit_" . ($order =~ /^pgaudit/ ? 'first' : 'last'));
	$node->init;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = '$order'");
	$node->start;

	my ($ret, $out, $err) = $node->psql('postgres', q{
		CREATE EXTENSION pgaudit;
		CREATE EXTENSION agent_guard;
		CREATE ROLE regress_pga_bot LOGIN;
		CREATE ROLE regress_pga_human LOGIN;
		CREATE TABLE public.accounts (id int PRIMARY KEY, balance int);
		INSERT INTO public.accounts SELECT g, 100 FROM generate_series(1, 10) g;
		GRANT ALL ON public.accounts TO regress_pga_bot, regress_pga_human;
		GRANT CREATE ON SCHEMA public TO regress_pga_bot;
		SELECT agent_guard.register_agent('regress_pga_bot');
	});
	is($ret, 0, "$order: set-up runs");
	like($err, qr/pgaudit session logging is on for agent "regress_pga_bot"/,
		"$order: register_agent says pgaudit logs the agent");
	is($node->safe_psql('postgres',
			q{SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting
			  WHERE setrole = 'regress_pga_bot'::regrole}),
		'pgaudit.log=all', "$order: pgaudit.log is set for the agent role");

	my $offset = -s $node->logfile;
	my ($r1, $o1, $e1) = $node->psql('postgres',
		'UPDATE public.accounts SET balance = 0 WHERE id = 1; CREATE TABLE public.bot_scratch (a int); DROP TABLE public.accounts;',
		extra_params => [ '-U', 'regress_pga_bot' ]);
	like($e1, qr/DROP TABLE on public.accounts by agent "regress_pga_bot" was not run: it waits for approval/, "$order: the agent's DROP is parked");
	$node->psql('postgres', 'UPDATE public.accounts SET balance = 1 WHERE id = 2;',
		extra_params => [ '-U', 'regress_pga_human' ]);

	# the writer logs asynchronously recorded decisions shortly after
	$node->poll_query_until('postgres',
		q{SELECT count(*) >= 3 FROM agent_guard.audit_log WHERE agent = 'regress_pga_bot'})
	  or die "audit rows did not arrive";
	my $log = slurp_file($node->logfile, $offset);

	like($log, qr/AUDIT: SESSION,\d+,\d+,WRITE,UPDATE,,,UPDATE public.accounts SET balance = 0/,
		"$order: pgaudit logged the agent's UPDATE");
	like($log, qr/AUDIT: SESSION,\d+,\d+,DDL,CREATE TABLE/,
		"$order: pgaudit logged the agent's CREATE TABLE");
	# a refused statement never runs, so pgaudit (which logs what runs) has
	# no line for it; agent_guard's record is the trace of the attempt
	unlike($log, qr/AUDIT: SESSION,\d+,\d+,DDL,DROP TABLE/,
		"$order: the refused DROP TABLE never ran");
	like($log, qr/agent_guard: \{.*"command":"UPDATE".*"decision":"allowed"/,
		"$order: agent_guard logged the allowed UPDATE");
	like($log, qr/agent_guard: \{.*"command":"DROP TABLE".*"decision":"parked"/,
		"$order: agent_guard logged the parked DROP");
	unlike($log, qr/AUDIT: SESSION.*balance = 1/,
		"$order: pgaudit did not log the human, for whom nothing was set");
	is($node->safe_psql('postgres',
			q{SELECT string_agg(decision, ',' ORDER BY seq) FROM agent_guard.audit_log
			  WHERE agent = 'regress_pga_bot'}),
		'allowed,allowed,parked', "$order: audit_log has the agent's three decisions");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM public.accounts'), '10',
		"$order: data intact");

	# unregistering turns pgaudit session logging off again
	$node->safe_psql('postgres', q{SELECT agent_guard.unregister_agent('regress_pga_bot')});
	is($node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_db_role_setting WHERE setrole = 'regress_pga_bot'::regrole}),
		'0', "$order: unregister resets pgaudit.log");
	$node->stop;
}

done_testing();
