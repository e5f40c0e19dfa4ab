# A burst of 10,000 refused statements from 20 concurrent agent sessions
# (SPEC §11): every refusal reaches the agent as an error, has exactly one
# audit_log row and exactly one "agent_guard: {json}" server-log line, every
# parked one has its request; nothing is lost or duplicated, the hash chain
# holds and the data is intact.  Then the same with the circuit breaker at its
# default threshold: the breaker's refusals are recorded the same way.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $sessions = 20;
my $agent = 'regress_burst_bot';
my $agent2 = 'regress_burst_bot2';

my $node = PostgreSQL::Test::Cluster->new('burst');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'agent_guard'
max_connections = 50
# the server log is read back below; the statements themselves are not needed in it
log_statement = none
# first part: the breaker would stop the agent after 20 refusals
agent_guard.breaker_threshold = 1000000
});
$node->start;

$node->safe_psql('postgres', qq{
	CREATE EXTENSION agent_guard;
	CREATE ROLE $agent LOGIN;
	CREATE ROLE $agent2 LOGIN;
	CREATE TABLE public.t (id int PRIMARY KEY, v text NOT NULL);
	INSERT INTO public.t SELECT g, 'row ' || g FROM generate_series(1, 100) g;
	GRANT SELECT, INSERT, UPDATE, DELETE ON public.t TO $agent, $agent2;
	SET client_min_messages = error;
	SELECT agent_guard.register_agent('$agent');
	SELECT agent_guard.register_agent('$agent2');
	SELECT agent_guard.set_policy('TRUNCATE TABLE', 'public.t', 'deny');
	SELECT agent_guard.set_policy('INSERT', 'public.t', 'deny');
});
my $data_sql = q{SELECT count(*), md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM public.t};
my $data_before = $node->safe_psql('postgres', $data_sql);

# Each statement carries a tag (phase letter, session, number) in a comment,
# so the agent's error, the audit row, the request and the log line can be
# matched to it.  kind: [ template, decision, command, SQLSTATE, message ]
my @kinds = (
	[ 'TRUNCATE /* %s */ public.t', 'denied', 'TRUNCATE TABLE', '42501',
	  'TRUNCATE TABLE on public.t is not allowed for agent "%s": policy 7 denies it' ],
	[ q{INSERT INTO /* %s */ public.t VALUES (-1, '%1$s')}, 'denied', 'INSERT', '42501',
	  'INSERT on public.t is not allowed for agent "%s": policy 8 denies it' ],
	[ 'DELETE FROM /* %s */ public.t', 'parked', 'DELETE WITHOUT WHERE', 'AG001',
	  'DELETE WITHOUT WHERE on public.t by agent "%s" was not run: it waits for approval as request %s' ],
	[ q{UPDATE /* %s */ public.t SET v = '%1$s'}, 'parked', 'UPDATE WITHOUT WHERE', 'AG001',
	  'UPDATE WITHOUT WHERE on public.t by agent "%s" was not run: it waits for approval as request %s' ],
	[ 'DROP TABLE /* %s */ public.t', 'parked', 'DROP TABLE', 'AG001',
	  'DROP TABLE on public.t by agent "%s" was not run: it waits for approval as request %s' ]);

sub tag_of
{
	my ($text) = @_;
	return ($text // '') =~ m{/\* ([a-z]\d\dq\d\d\d) \*/} ? $1 : '?';
}

# Compare two tag => value maps; report counts and a few examples, not 10,000 lines.
sub same_map
{
	my ($got, $want, $test) = @_;
	my (@missing, @differ);
	foreach my $tag (sort keys %$want)
	{
		if (!exists $got->{$tag}) { push @missing, $tag; }
		elsif ($got->{$tag} ne $want->{$tag})
		{
			push @differ, "$tag: got '$got->{$tag}', expected '$want->{$tag}'";
		}
	}
	my @extra = grep { !exists $want->{$_} } sort keys %$got;
	my $ok = ok(!@missing && !@extra && !@differ, $test);
	if (!$ok)
	{
		diag(sprintf('%d missing, %d unexpected, %d different', scalar @missing,
				scalar @extra, scalar @differ));
		diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]") if @missing;
		diag("unexpected: @extra[0 .. ($#extra < 9 ? $#extra : 9)]") if @extra;
		diag(join("\n", @differ[0 .. ($#differ < 9 ? $#differ : 9)])) if @differ;
	}
	return $ok;
}

# Run $per_session statements in each of $sessions concurrent sessions of
# $role, and check that each one was refused and recorded exactly once.
# Returns the tag => decision map of the refusals.
sub burst
{
	my ($phase, $role, $per_session, $breaker) = @_;
	my $total = $sessions * $per_session;
	my (%expected, @files);

	for my $s (1 .. $sessions)
	{
		my $file = $node->basedir . "/burst_${phase}_$s.sql";
		my @tags;
		open my $fh, '>', $file or die "could not write $file: $!";
		for my $i (1 .. $per_session)
		{
			my $tag = sprintf('%s%02dq%03d', $phase, $s, $i);
			my $kind = ($s + $i) % @kinds;
			my $statement = sprintf($kinds[$kind][0], $tag);
			print $fh "$statement;\n";
			$expected{$tag} = { statement => $statement, kind => $kinds[$kind] };
			push @tags, $tag;
		}
		close $fh;
		push @files, { file => $file, tags => \@tags };
	}

	my $log_offset = -s $node->logfile;
	my $audit_before = $node->safe_psql('postgres', 'SELECT max(seq) FROM agent_guard.audit_log');

	# all sessions at once, each running its statements one by one
	my (@handles, @stdout, @stderr);
	my $started = time();
	for my $s (0 .. $sessions - 1)
	{
		$stdout[$s] = $stderr[$s] = '';
		push @handles, IPC::Run::start(
			[ 'psql', '-X', '-q', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres'),
			  '-U', $role, '-f', $files[$s]{file} ],
			'<', \undef, '>', \$stdout[$s], '2>', \$stderr[$s],
			IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	}
	my @exit;
	for my $s (0 .. $sessions - 1)
	{
		$handles[$s]->finish;
		push @exit, $handles[$s]->result(0);
	}
	my $elapsed = time() - $started;
	is_deeply(\@exit, [ (0) x $sessions ], "$phase: every agent session ran its script to the end");
	diag(sprintf('%s: %d refusals from %d sessions in %.1f s: %.0f refusals/s',
			$phase, $total, $sessions, $elapsed, $total / $elapsed));

	# What the agents were told: one refusal per statement.  A tripped
	# breaker refuses with its own SQLSTATE and message.
	my (%client, %decision, %client_request);
	my $errors = 0;
	my $other = 0;
	for my $s (0 .. $sessions - 1)
	{
		# one report per "psql:FILE:LINE: " line, followed by DETAIL, HINT, ...
		foreach my $report (split /^(?=psql:)/m, $stderr[$s])
		{
			if ($report !~ /^psql:[^\n]*?:(\d+): ERROR:  (\w{5}): ([^\n]*)\n(.*)\z/s)
			{
				diag("$phase session $s: unexpected client output: $report") if $other++ < 5;
				next;
			}
			my ($line, $sqlstate, $message, $rest) = ($1, $2, $3, $4);
			$errors++;
			my $tag = $files[$s]{tags}[ $line - 1 ] // "line $line";
			my $kind = $expected{$tag}{kind} // $kinds[0];
			my $decision = $kind->[1];
			# a parked statement's message names its request
			my $request = $message =~ /as request (\d+)$/ ? $1 : '?';
			my ($want_state, $want_message) =
			  ($kind->[3], $decision eq 'parked' ? sprintf($kind->[4], $role, $request)
				: sprintf($kind->[4], $role));
			if ($breaker && $sqlstate eq 'AG003')
			{
				$decision = 'breaker';
				$want_state = 'AG003';
				$want_message =
				  sprintf('agent "%s" is stopped by its circuit breaker: %s on public.t refused',
					$role, $kind->[2]);
			}
			my $what = $message eq $want_message ? 'ok' : "message '$message'";
			$what .= " sqlstate $sqlstate" if $sqlstate ne $want_state;
			$client{$tag} = exists $client{$tag} ? 'twice' : $what;
			$decision{$tag} = $decision;
			if ($decision eq 'parked')
			{
				$client_request{$tag} = $request;
			}
		}
	}
	is($errors, $total, "$phase: the agents got $total refusal errors");
	is($other, 0, "$phase: and no other client output");
	same_map(\%client, { map { $_ => 'ok' } keys %expected },
		"$phase: each statement was refused once, with its SQLSTATE and message");

	# audit_log: exactly one row per refusal, and nothing else about these statements
	my (%audit, %audit_seq, %audit_request);
	my $rows = 0;
	my @trips;
	foreach my $row (split /\n/, $node->safe_psql('postgres', qq{
		SELECT seq, decision, command, agent, "session_user", coalesce(request_id::text, ''),
			   statement
		  FROM agent_guard.audit_log WHERE seq > $audit_before ORDER BY seq}))
	{
		my ($seq, $decision, $command, $row_agent, $session_user, $request_id, $statement) =
		  split /\|/, $row, 7;
		if ($decision eq 'breaker_tripped')
		{
			push @trips, "$seq|$row_agent";
			next;
		}
		$rows++;
		my $tag = tag_of($statement);
		$audit{$tag} = exists $audit{$tag} ? 'twice' :
		  "$decision|$command|$row_agent|$session_user|$statement";
		$audit_request{$tag} = $request_id if $decision eq 'parked';
		$audit_seq{$seq} = { tag => $tag, decision => $decision, command => $command,
			request_id => $request_id };
	}
	is($rows, $total, "$phase: $total new audit rows about the statements");
	same_map(\%audit,
		{ map {
			my $e = $expected{$_};
			$_ => join('|', $decision{$_} // '?', $e->{kind}[2], $role, $role, $e->{statement})
		} keys %expected },
		"$phase: each refusal has one audit row: decision, command, agent and statement");
	is_deeply([ map { (split /\|/)[1] } @trips ], $breaker ? [$role] : [],
		$breaker ? "$phase: the breaker tripped once" : "$phase: the breaker did not trip")
	  or diag(explain(\@trips));

	# requests: one per parked statement, the one the agent was told about
	my %requests;
	foreach my $row (split /\n/, $node->safe_psql('postgres', qq{
		SELECT id, status, command, statement FROM agent_guard.requests
		 WHERE agent = '$role'::regrole ORDER BY id}))
	{
		my ($id, $status, $command, $statement) = split /\|/, $row, 4;
		my $tag = tag_of($statement);
		$requests{$tag} = exists $requests{$tag} ? 'twice' : "$id|$status|$command";
	}
	my @parked = grep { $decision{$_} eq 'parked' } keys %decision;
	is(scalar keys %requests, scalar @parked,
		"$phase: one request per parked statement (" . scalar(@parked) . ')');
	same_map(\%requests,
		{ map { $_ => "$client_request{$_}|pending|$expected{$_}{kind}[2]" } @parked },
		"$phase: each parked statement has one pending request, the one its error named");
	same_map(\%audit_request, \%client_request, "$phase: parked audit rows name that request");

	# The server log: exactly one line per audit row.  The writer logs each
	# row after its commit and before the agent gets its answer, so they are
	# all there; wait a little in case the log file is slow to show them.
	my @lines;
	for (my $try = 0; $try < 50; $try++)
	{
		@lines = grep { /\bagent_guard: \{/ } split /\n/, slurp_file($node->logfile, $log_offset);
		last if @lines >= $total + @trips;
		usleep(100_000);
	}
	my (%log_seq, %log_tag, %log_other);
	my ($bad_json, $unstored, $logged) = (0, 0, 0);
	foreach my $line (@lines)
	{
		my ($json) = $line =~ /\bagent_guard: (\{.*)$/;
		my $event = eval { decode_json($json) };
		if (!defined $event)
		{
			diag("not JSON: $line") if $bad_json++ < 5;
			next;
		}
		my $seq = $event->{seq} // 'null';
		$unstored++ if $seq eq 'null';
		$log_seq{$seq}++;
		my $tag = tag_of($event->{statement});
		if ($tag eq '?')
		{
			$log_other{ $event->{decision} // '?' }++;
			next;
		}
		$logged++;
		$log_tag{$tag} = exists $log_tag{$tag} ? 'twice' :
		  join('|', $seq, $event->{decision} // '', $event->{command} // '',
			$event->{request_id} // '');
	}
	is($bad_json, 0, "$phase: every agent_guard log line is JSON");
	is($logged, $total, "$phase: the server log has $total lines about the statements");
	is($unstored, 0, "$phase: all of them are of stored rows (seq not null)");
	is(scalar(grep { $log_seq{$_} > 1 } keys %log_seq), 0, "$phase: each seq is logged once");
	same_map(\%log_tag,
		{ map {
			my $row = $audit_seq{$_};
			$row->{tag} => join('|', $_, @$row{qw(decision command request_id)})
		} keys %audit_seq },
		"$phase: each audit row has exactly one log line, with its seq, decision, command and request");
	is_deeply(\%log_other, $breaker ? { breaker_tripped => 1 } : {},
		"$phase: and no other line but the trip's")
	  or diag(explain(\%log_other));
	my $log_text = slurp_file($node->logfile, $log_offset);
	unlike($log_text, qr/agent_guard could not store/, "$phase: no record failed to be stored");
	unlike($log_text, qr/PANIC|server process .* was terminated|terminated by signal/,
		"$phase: no backend crashed");

	return \%decision;
}

# 10,000 refusals: 4,000 denied, 6,000 parked
my $decisions = burst('s', $agent, 500, 0);
my %count;
$count{$_}++ foreach values %$decisions;
is_deeply(\%count, { denied => 4000, parked => 6000 }, 's: 4,000 denied and 6,000 parked');
is($node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE decision = 'denied'), count(*) FILTER (WHERE decision = 'parked')
		  FROM agent_guard.audit_log}),
	'4000|6000', 's: audit_log has 4,000 denied and 6,000 parked rows');
is($node->safe_psql('postgres', 'SELECT count(*) FROM agent_guard.requests'), '6000',
	's: and 6,000 requests');

# The breaker at its default: after 20 refusals the agent's changes are
# refused by the breaker; a session that passed the check before the trip
# may still get its policy refusal, so at most 20 + 19 are not the breaker's.
$node->append_conf('postgresql.conf', 'agent_guard.breaker_threshold = 20');
$node->reload;
$decisions = burst('b', $agent2, 50, 1);
my $not_breaker = grep { $_ ne 'breaker' } values %$decisions;
ok($not_breaker >= 20 && $not_breaker <= 20 + $sessions - 1,
	"b: $not_breaker refusals before the breaker stopped the agent (20 to 39)");
is($node->safe_psql('postgres', "SELECT agent_guard.breaker_tripped('$agent2')"), 't',
	'b: the breaker of the second agent is tripped');
is($node->safe_psql('postgres', "SELECT agent_guard.breaker_tripped('$agent')"), 'f',
	'b: the first agent is not');

# the chain and the data
is($node->safe_psql('postgres',
		'SELECT intact, rows_checked = (SELECT count(*) FROM agent_guard.audit_log)
		   FROM agent_guard.verify_audit()'),
	't|t', 'verify_audit(): the chain is intact over every row');
is($node->safe_psql('postgres', $data_sql), $data_before, 'public.t is intact');

$node->stop;
done_testing();
