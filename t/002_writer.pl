
# Copyright (c) agent_guard authors

# The writer: refusals and approval requests are stored by a per-database
# background worker in its own transaction before the agent gets its error.
# Terminated (SIGTERM), killed (SIGKILL: the postmaster restarts every
# backend), stopped or blocked while agents are being refused, the writer
# never lets a refused statement run, never loses a record it acknowledged,
# never stores one twice, and a new one is started by the next refusal that
# needs it; pending requests survive a restart and a crash restart and can
# still be approved, and then run exactly once.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

# a psql that lost its server may still be written to
$SIG{PIPE} = 'IGNORE';

my $agent = 'regress_writer_bot';
my $approver = 'regress_writer_approver';
my $writer_type = 'agent_guard writer';
my $ntables = 10;    # public.p_N: DROP TABLE parks; public.d_N: DROP TABLE is denied

my $node = PostgreSQL::Test::Cluster->new('writer');
# streaming allowed: section 4 needs synchronous replication settings
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'agent_guard'
# hundreds of refusals in a few seconds: keep the circuit breaker out of this test
agent_guard.breaker_threshold = 1000000
# the writer is killed: the postmaster must reinitialize, not stop
restart_after_crash = on
# the server log is read back; the statements themselves are not needed in it
log_statement = none
});
$node->start;

# every table the agent could drop belongs to it: only agent_guard stops it
my $tables = join "\n",
  map { "CREATE TABLE public.$_ (id int); ALTER TABLE public.$_ OWNER TO $agent;" }
  ((map { "p_$_" } 0 .. $ntables), (map { "d_$_" } 0 .. $ntables), 't_sync', 't_stop',
	't_blocked');
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION agent_guard;
CREATE ROLE $agent LOGIN;
CREATE ROLE $approver LOGIN;
GRANT USAGE ON SCHEMA agent_guard TO $approver;
GRANT EXECUTE ON FUNCTION agent_guard.approve_pending(bigint, text) TO $approver;
$tables
CREATE TABLE public.counter (n int);
INSERT INTO public.counter VALUES (0);
GRANT SELECT, UPDATE ON public.counter TO $agent;
SET client_min_messages = error;
SELECT agent_guard.register_agent('$agent');
});
my $deny_policy = $node->safe_psql('postgres',
	"SELECT agent_guard.set_policy('DROP TABLE', 'public.d_*', 'deny', note => 'tap')");

my $all_tables = 2 * ($ntables + 1) + 3;
my $table_count_sql = q{SELECT count(*) FROM pg_class
	WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname ~ '^(p|d|t)_'};

# Run $sql in one psql session and return (sqlstate, stdout, stderr); the
# SQLSTATE is that of the last failed statement, 00000 if none failed.
sub run_sql
{
	my ($sql, $user, %params) = @_;
	my @extra = defined $user ? (extra_params => [ '-U', $user ]) : ();
	my ($ret, $stdout, $stderr) = $node->psql(
		'postgres', "$sql\n\\echo SQLSTATE=:LAST_ERROR_SQLSTATE",
		on_error_stop => 0,
		@extra, %params);
	my $sqlstate =
	  defined $stdout && $stdout =~ s/\n?SQLSTATE=(\w+)\n?\z//s ? $1 : '?';
	return ($sqlstate, $stdout, $stderr);
}

# Process ids of the writers, as pg_stat_activity shows them; none while
# the server is restarting.
sub writer_pids
{
	my ($ret, $out) = $node->psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = '$writer_type' ORDER BY pid");
	return () if $ret != 0;
	return grep { /^\d+$/ } split /\n/, $out;
}

sub set_write_timeout
{
	my ($value) = @_;
	$node->safe_psql('postgres',
		defined $value
		? "ALTER SYSTEM SET agent_guard.write_timeout = $value"
		: 'ALTER SYSTEM RESET agent_guard.write_timeout');
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	ok( $node->poll_query_until(
			'postgres',
			"SELECT setting FROM pg_settings WHERE name = 'agent_guard.write_timeout'",
			$value // '5000'),
		'write_timeout ' . ($value // 'reset') . ' in effect');
}

sub audit_count
{
	my ($statement, $decision) = @_;
	my $quoted = $statement =~ s/'/''/gr;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM agent_guard.audit_log
		  WHERE statement = '$quoted' AND decision = '$decision'");
}

sub request_count
{
	my ($statement) = @_;
	my $quoted = $statement =~ s/'/''/gr;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM agent_guard.requests WHERE statement = '$quoted'");
}

sub pending_ids
{
	return $node->safe_psql('postgres',
		"SELECT string_agg(id::text, ',' ORDER BY id) FROM agent_guard.requests WHERE status = 'pending'"
	);
}

# A refusal in an agent session, then the writers of this database as seen
# right after it by a session connected before it (a writer leaves only
# after two idle seconds).  Returns (SQLSTATE, [writer pids], stderr).
sub refusal_and_writer
{
	my ($statement) = @_;
	my $poller;
	poll_writers(\$poller);
	my ($state, $stdout, $stderr) = run_sql("$statement;", $agent);
	my @pids = poll_writers(\$poller);
	poller_quit(\$poller);
	return ($state, \@pids, $stderr);
}

sub wait_for_crash_restart
{
	my ($offset) = @_;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$node->wait_for_log(qr/database system is ready to accept connections/, $offset);
	return $node->poll_query_until('postgres', 'SELECT 1', '1');
}


###########################################################################
# 1. Normal path: one audit row per refusal, the request, a writer.
###########################################################################

my ($state, $stdout, $stderr) = run_sql('DROP TABLE public.d_0;', $agent);
is($state, '42501', 'denied DROP TABLE: SQLSTATE 42501');
like($stderr,
	qr/ERROR:  DROP TABLE on public\.d_0 is not allowed for agent "$agent": policy $deny_policy denies it\n/,
	'denied DROP TABLE: error message');
is(audit_count('DROP TABLE public.d_0', 'denied'), '1', 'denied DROP TABLE: one audit row');

my $pids;
($state, $pids, $stderr) = refusal_and_writer('DROP TABLE public.p_0');
is($state, 'AG001', 'parked DROP TABLE: SQLSTATE AG001');
is(scalar @$pids, 1, 'one writer runs right after the refusals');
like($stderr,
	qr/ERROR:  DROP TABLE on public\.p_0 by agent "$agent" was not run: it waits for approval as request \d+\n/,
	'parked DROP TABLE: error message');
my ($first_request) = $stderr =~ /as request (\d+)/;
$first_request //= 0;
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), string_agg(request_id::text, ',') FROM agent_guard.audit_log
		  WHERE statement = 'DROP TABLE public.p_0' AND decision = 'parked'"),
	"1|$first_request",
	'parked DROP TABLE: one audit row naming the request');
is( $node->safe_psql(
		'postgres',
		"SELECT status, agent::text, command, objects FROM agent_guard.requests
		  WHERE statement = 'DROP TABLE public.p_0'"),
	"pending|$agent|DROP TABLE|{public.p_0}",
	'parked DROP TABLE: one request, pending');
is($node->safe_psql('postgres', $table_count_sql), $all_tables, 'no table was dropped');


###########################################################################
# 2. Writers terminated and killed while agent sessions are refused.
###########################################################################

# Each agent session is a psql reading statements from a pipe: DROP TABLEs,
# denied and parked in turn, each tagged in a comment so that its error,
# audit row, request and server-log line can be matched.  The statements
# are sent in chunks; during each chunk the writer is signalled.  A session
# that loses its server (SIGKILL of the writer makes the postmaster end every
# backend) reconnects and goes on with the next statement; the one it was
# running when the server went away is of unknown fate: stored once or not
# at all, and not run.

sub start_run
{
	my ($s) = @_;
	my $run = { input => '', stdout => '', stderr => '', line_of => {}, lines => 0 };
	$run->{h} = IPC::Run::start(
		[
			'psql', '-XAtq', '-v', 'ON_ERROR_STOP=0', '-v', 'VERBOSITY=verbose',
			'-d', $node->connstr('postgres'), '-U', $agent, '-f', '-'
		],
		'<', \$run->{input}, '>', \$run->{stdout}, '2>', \$run->{stderr},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	$s->{run} = $run;
	push @{ $s->{runs} }, $run;
	return;
}

# Send statements $from .. $to - 1 of session $s, then a marker.
sub feed
{
	my ($s, $from, $to, $mark) = @_;
	my $run = $s->{run};
	foreach my $i ($from .. $to - 1)
	{
		$run->{input} .= "$s->{st}[$i]{sql};\n";
		$run->{line_of}{ ++$run->{lines} } = $i;
	}
	$run->{input} .= "\\echo $mark\n";
	$run->{lines}++;
	eval { $run->{h}->pump_nb; };
	return;
}

# What a run of psql was told: each refusal by statement index.  The
# session goes on after the last statement that got an answer or lost its
# server.
sub parse_run
{
	my ($s, $run) = @_;
	foreach my $block (split /(?=^psql:<stdin>:\d+: )/m, $run->{stderr})
	{
		next unless $block =~ /^psql:<stdin>:(\d+): /;
		my $i = $run->{line_of}{$1};
		next unless defined $i;
		$s->{next} = $i + 1 if $i + 1 > $s->{next};
		if ($block =~ /^psql:<stdin>:\d+: ERROR:  (\w{5}): (.*)$/m)
		{
			$s->{result}[$i] = { state => $1, message => $2 };
			delete $s->{unknown}{$i};
		}
		elsif (!defined $s->{result}[$i])
		{
			# the server went away while this statement was sent or running
			$s->{unknown}{$i} = $block;
		}
	}
	return;
}

# Has this psql ended (its server went away, or it could not connect)?
# Besides what it said, its process state tells (Linux /proc): one that
# ended in the middle of a statement may not have been read from yet.
sub psql_gone
{
	my ($h, $stderr) = @_;
	return 1 if $stderr =~ /connection to server was lost|^psql: error: /m;
	my $pid = $h->{KIDS}[0]{PID};
	open my $fh, '<', "/proc/$pid/stat" or return 1;
	my $stat = <$fh> // '';
	close $fh;
	return $stat =~ /^\d+ \(.*\) Z/ ? 1 : 0;
}

# Read all a psql that has ended wrote, and reap it.  Nothing more is
# written to it (that would fail on the closed pipe before reading).
sub collect_run
{
	my ($run) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	$run->{input} = '';
	for (;;)
	{
		eval { $run->{h}->pump_nb; };
		last if $@ || time > $deadline;
		usleep(1_000);
	}
	eval { $run->{h}->finish; };
	return;
}

# A psql whose server went away: one that was running a statement ended,
# saying where; one that was idle notices with the next query that needs
# the server.  Nothing after the line where it lost its connection reached
# the server.
sub end_lost_run
{
	my ($run) = @_;
	if (!psql_gone($run->{h}, $run->{stderr}))
	{
		$run->{input} .= "SELECT 'probe';\n";
		$run->{lines}++;
		my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
		while (!psql_gone($run->{h}, $run->{stderr}) && time < $deadline)
		{
			eval { $run->{h}->pump_nb; };
			usleep(1_000);
		}
	}
	collect_run($run);
	return;
}

# Wait until session $s has its answers up to chunk marker $c; restart it
# where it stopped if it lost its server.
sub complete_chunk
{
	my ($s, $c, $end) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	for (;;)
	{
		my $run = $s->{run};
		eval { $run->{h}->pump_nb; };
		if ($run->{stdout} =~ /^MARK_$c$/m)
		{
			$s->{next} = $end;
			return;
		}
		if (psql_gone($run->{h}, $run->{stderr}))
		{
			collect_run($run);
			$s->{reconnects}++;
			parse_run($s, $run);
			# until the server accepts connections again
			$node->poll_query_until('postgres', 'SELECT 1', '1');
			start_run($s);
			feed($s, $s->{next}, $end, "MARK_$c");
			next;
		}
		die "session $s->{id} did not finish chunk $c" if time > $deadline;
		usleep(5_000);
	}
}

# A psql of the test's own, asking for the writers' process ids; replaced
# when its server went away.
sub poll_writers
{
	my ($pref) = @_;
	if (!$$pref)
	{
		my $p = { in => '', out => '', err => '', n => 0 };
		$p->{h} = IPC::Run::start(
			[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-f', '-' ],
			'<', \$p->{in}, '>', \$p->{out}, '2>', \$p->{err});
		$$pref = $p;
	}
	my $p = $$pref;
	my $n = ++$p->{n};
	$p->{out} = '';
	$p->{in} .= "SELECT pid FROM pg_stat_activity WHERE backend_type = '$writer_type';\n\\echo END_$n\n";
	my $deadline = time + 10;
	while ($p->{out} !~ /^END_$n$/m)
	{
		eval { $p->{h}->pump_nb; };
		if (psql_gone($p->{h}, $p->{err}) || time > $deadline)
		{
			poller_quit($pref);
			return ();
		}
		usleep(500);
	}
	return grep { /^\d+$/ } split /\n/, $p->{out};
}

sub poller_quit
{
	my ($pref) = @_;
	return unless $$pref;
	$$pref->{in} .= "\\q\n";
	eval { $$pref->{h}->finish; };
	eval { $$pref->{h}->kill_kill; };
	undef $$pref;
	return;
}

# Run the sessions of one phase, signalling the writer during each chunk
# of statements; returns the sessions and what was signalled.
sub refusal_storm
{
	my ($phase, $signal, $nsess, $nchunks, $chunk) = @_;
	my @sessions;
	foreach my $sn (1 .. $nsess)
	{
		my @st;
		foreach my $i (1 .. $nchunks * $chunk)
		{
			my $tag = sprintf('%s%02dq%03d', $phase, $sn, $i);
			my $kind = $i % 2 ? 'denied' : 'parked';
			my $table = sprintf('public.%s_%d', $kind eq 'denied' ? 'd' : 'p', ($sn + $i) % $ntables + 1);
			push @st, { tag => $tag, kind => $kind, table => $table,
				sql => "DROP TABLE /* $tag */ $table" };
		}
		push @sessions, { id => $sn, st => \@st, result => [], next => 0, unknown => {},
			runs => [], reconnects => 0 };
	}

	my (%killed, $kills, $poller);
	$kills = 0;
	poll_writers(\$poller);
	start_run($_) foreach @sessions;
	foreach my $c (1 .. $nchunks)
	{
		my ($start, $end) = (($c - 1) * $chunk, $c * $chunk);
		foreach my $s (@sessions)
		{
			feed($s, $start, $end, "MARK_$c");
		}
		# signal the writer storing the chunk, a moment after it started
		my $t = time;
		my @pids;
		while (!@pids && time < $t + 10)
		{
			@pids = grep { !$killed{$_} } poll_writers(\$poller);
			usleep(1_000) unless @pids;
		}
		usleep(int(rand(20_000)));
		my $offset = -s $node->logfile;
		if (@pids)
		{
			kill $signal, @pids;
			$killed{$_} = 1 foreach @pids;
			$kills++;
			if ($signal eq 'KILL')
			{
				ok(wait_for_crash_restart($offset),
					"$phase: server back after the crash restart ($c)");
				like(slurp_file($node->logfile, $offset),
					qr/background worker "$writer_type" \(PID $pids[0]\) was terminated by signal 9/,
					"$phase: the postmaster saw the writer killed ($c)");
				# the poller lost its server too; a new one is ready for the next chunk
				poller_quit(\$poller);
				poll_writers(\$poller);
				# every session lost its server: go on in a new one
				foreach my $s (@sessions)
				{
					my $run = $s->{run};
					end_lost_run($run);
					parse_run($s, $run);
					$s->{reconnects}++;
					start_run($s);
					feed($s, $s->{next}, $end, "MARK_$c");
				}
			}
		}
		note(sprintf('%s: chunk %d: writer %s signalled after %.3f s', $phase, $c, "@pids", time - $t));
		complete_chunk($_, $c, $end) foreach @sessions;
		note(sprintf('%s: chunk %d done after %.3f s', $phase, $c, time - $t));
	}
	poller_quit(\$poller);
	foreach my $s (@sessions)
	{
		$s->{run}{input} .= "\\q\n";
		eval { $s->{run}{h}->finish; };
		parse_run($s, $_) foreach @{ $s->{runs} };
	}
	return (\@sessions, $kills, [ sort keys %killed ]);
}

# Check what a storm left: every statement refused, its record stored once
# (or the agent/server log told it was not), nothing stored twice, nothing run.
sub check_storm
{
	my ($phase, $sessions, $log_offset) = @_;

	# refusals the backend reported as not stored in the server log: its LOG
	# line, then its own JSON line for the statement
	my (%not_stored, %unstored_pid);
	foreach my $l (split /\n/, slurp_file($node->logfile, $log_offset))
	{
		next unless $l =~ /^\S+ \S+ \S+ \[(\d+)\]/;
		my $pid = $1;
		if ($l =~ /LOG:  agent_guard could not store (the audit record of a (?:refusal|decision)|an approval request)/)
		{
			$unstored_pid{$pid} = 1;
		}
		elsif ($l =~ /agent_guard: \{.*"statement":"DROP TABLE \/\* ($phase\d\dq\d\d\d) \*\//
			&& delete $unstored_pid{$pid})
		{
			$not_stored{$1} = 1;
		}
	}

	# what is stored, by tag
	my (%audit, %requests);
	foreach my $row (split /\n/, $node->safe_psql('postgres', qq{
		SELECT substring(statement from '/\\* ($phase\\S+) \\*/') AS tag, decision,
			count(*), coalesce(string_agg(request_id::text, ',' ORDER BY seq), '')
		  FROM agent_guard.audit_log
		 WHERE statement LIKE 'DROP TABLE /* $phase%'
		 GROUP BY 1, 2}))
	{
		my ($tag, $decision, $count, $ids) = split /\|/, $row, -1;
		$audit{$tag}{$decision} = [ $count, $ids ];
	}
	foreach my $row (split /\n/, $node->safe_psql('postgres', qq{
		SELECT substring(statement from '/\\* ($phase\\S+) \\*/'),
			string_agg(id::text || ':' || status || ':' || objects::text, ',' ORDER BY id)
		  FROM agent_guard.requests
		 WHERE statement LIKE 'DROP TABLE /* $phase%'
		 GROUP BY 1}))
	{
		my ($tag, $list) = split /\|/, $row, -1;
		$requests{$tag} = $list;
	}

	my ($total, $stored, $told_not_stored, $logged_not_stored, $unknown) = (0, 0, 0, 0, 0);
	my @wrong;
	foreach my $s (@$sessions)
	{
		foreach my $i (0 .. $#{ $s->{st} })
		{
			my $st = $s->{st}[$i];
			my $tag = $st->{tag};
			my $r = $s->{result}[$i];
			my $arow = $audit{$tag} // {};
			my @decisions = sort keys %$arow;
			my $rows = 0;
			$rows += $arow->{$_}[0] foreach @decisions;
			my $req = $requests{$tag} // '';
			$total++;

			push @wrong, "$tag: more than one audit row: $rows" if $rows > 1;
			push @wrong, "$tag: more than one request: $req" if $req =~ /,/;
			push @wrong, "$tag: audit row of decision @decisions" if grep { $_ ne $st->{kind} } @decisions;

			if (!defined $r)
			{
				if (exists $s->{unknown}{$i})
				{
					# the server went away under it: stored once or not at all
					$unknown++;
					push @wrong, "$tag: lost statement has audit rows $rows but request '$req'"
					  if $st->{kind} eq 'parked' && ($rows == 1) != ($req ne '');
					push @wrong, "$tag: lost statement logged as not stored but has $rows audit rows"
					  if $not_stored{$tag} && $rows != 0;
				}
				else
				{
					push @wrong, "$tag: no refusal reached the agent";
				}
				next;
			}

			if ($st->{kind} eq 'denied')
			{
				my $want = qq{DROP TABLE on $st->{table} is not allowed for agent "$agent": policy $deny_policy denies it};
				push @wrong, "$tag: unexpected refusal $r->{state}: $r->{message}"
				  unless $r->{state} eq '42501' && $r->{message} eq $want;
				if ($not_stored{$tag})
				{
					$logged_not_stored++;
					push @wrong, "$tag: logged as not stored, yet $rows audit rows" if $rows != 0;
				}
				else
				{
					$stored++;
					push @wrong, "$tag: refused, not logged as unstored, but $rows audit rows"
					  if $rows != 1;
				}
			}
			elsif ($r->{state} eq 'AG001'
				&& $r->{message} =~
				/^DROP TABLE on \Q$st->{table}\E by agent "$agent" was not run: it waits for approval as request (\d+)$/)
			{
				my $id = $1;
				$stored++;
				push @wrong, "$tag: told request $id; audit rows $rows ("
				  . ($arow->{parked}[1] // '') . "), requests '$req'"
				  unless $rows == 1
				  && ($arow->{parked}[1] // "") eq $id
				  && $req eq "$id:pending:{$st->{table}}";
			}
			elsif ($r->{state} eq 'AG001'
				&& $r->{message} eq
				"DROP TABLE on $st->{table} was not run: it needs approval, and the request could not be stored")
			{
				$told_not_stored++;
				push @wrong, "$tag: told not stored, yet $rows audit rows, requests '$req'"
				  unless $rows == 0 && $req eq '';
			}
			else
			{
				push @wrong, "$tag: unexpected refusal $r->{state}: $r->{message}";
			}
		}
	}
	is_deeply(\@wrong, [],
		"$phase: each refusal is stored exactly once, or the agent (parked) or the server log (denied) says it is not and it is not"
	) or diag(join("\n", @wrong[0 .. ($#wrong < 19 ? $#wrong : 19)]));
	note(sprintf('%s: %d statements: %d stored, %d told not stored, %d logged not stored, %d lost with their connection',
			$phase, $total, $stored, $told_not_stored, $logged_not_stored, $unknown));
	is($stored + $told_not_stored + $logged_not_stored + $unknown, $total,
		"$phase: every statement is accounted for");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM (SELECT statement FROM agent_guard.audit_log
			  WHERE decision IN ('denied', 'parked') AND statement LIKE 'DROP TABLE /* $phase%'
			  GROUP BY statement HAVING count(*) > 1) d"),
		'0',
		"$phase: no refusal has two audit rows");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM (SELECT statement FROM agent_guard.requests
			  WHERE statement LIKE 'DROP TABLE /* $phase%'
			  GROUP BY statement HAVING count(*) > 1) d"),
		'0',
		"$phase: no statement has two requests");
	is($node->safe_psql('postgres', $table_count_sql), $all_tables, "$phase: no table was dropped");
	is($node->safe_psql('postgres', 'SELECT intact FROM agent_guard.verify_audit()'),
		't', "$phase: audit chain intact");
	return;
}

# the writer comes back: the next refusal is stored, and a writer runs
sub check_writer_back
{
	my ($phase, $killed) = @_;
	my $statement = "DROP TABLE /* ${phase}_after */ public.d_1";
	my ($state, $pids, $stderr) = refusal_and_writer($statement);
	is($state, '42501', "$phase: a refusal after the signals");
	is(scalar @$pids, 1, "$phase: a writer runs right after it");
	is(audit_count($statement, 'denied'), '1', "$phase: the refusal after the signals is stored");
	ok(!grep({ my $p = $_; grep { $_ == $p } @$killed } @$pids),
		"$phase: the writer is a new one") or diag("writers @$pids, signalled @$killed");
	return;
}

my ($sessions, $kills, $killed);
my $log_offset;
my $started;

# 2a. SIGTERM, write_timeout at its default: what a terminated writer was
# storing is stored by the next one
$log_offset = -s $node->logfile;
$started = time;
($sessions, $kills, $killed) = refusal_storm('a', 'TERM', 4, 5, 20);
note(sprintf('a: %d writers terminated in %.1f s', $kills, time - $started));
is($kills, 5, 'a: a writer was terminated during each chunk of refusals');
check_storm('a', $sessions, $log_offset);
check_writer_back('a', $killed);

# 2b. SIGTERM, a write_timeout about as long as a new writer takes to be
# started: some records are stored by the next writer, some given up on
set_write_timeout(1020);
$log_offset = -s $node->logfile;
$started = time;
($sessions, $kills, $killed) = refusal_storm('b', 'TERM', 4, 5, 20);
note(sprintf('b: %d writers terminated in %.1f s', $kills, time - $started));
is($kills, 5, 'b: a writer was terminated during each chunk of refusals');
set_write_timeout(undef);
check_storm('b', $sessions, $log_offset);
check_writer_back('b', $killed);

# 2c. SIGKILL: crash restart of every backend; the sessions reconnect.
# Everything acknowledged before a crash is still there after it.
my $pending_before = pending_ids();
$log_offset = -s $node->logfile;
$started = time;
($sessions, $kills, $killed) = refusal_storm('c', 'KILL', 4, 3, 40);
note(sprintf('c: %d writers killed in %.1f s; sessions reconnected %d times',
		$kills, time - $started, eval { my $n = 0; $n += $_->{reconnects} foreach @$sessions; $n }));
is($kills, 3, 'c: a writer was killed during each chunk of refusals');
check_storm('c', $sessions, $log_offset);
check_writer_back('c', $killed);
like(pending_ids(), qr/^\Q$pending_before\E/, 'c: requests pending before the crashes still are');


###########################################################################
# 3. Fail closed: a stopped writer, a blocked writer, a short write_timeout.
###########################################################################

set_write_timeout(200);
($state, $pids, $stderr) = refusal_and_writer('DROP TABLE public.d_1');
my @stopped = @$pids;
is(scalar @stopped, 1, 'one writer to stop');
$log_offset = -s $node->logfile;
kill 'STOP', @stopped;

my $timed_out = 0;
($state, $stdout, $stderr) = run_sql('DROP TABLE /* stop */ public.d_2;',
	$agent, timeout => 60, timed_out => \$timed_out);
ok(!$timed_out, 'denied DROP TABLE with a stopped writer does not hang');
is($state, '42501', 'denied DROP TABLE with a stopped writer: SQLSTATE 42501');
like($stderr,
	qr/ERROR:  DROP TABLE on public\.d_2 is not allowed for agent "$agent": policy $deny_policy denies it\n/,
	'denied DROP TABLE with a stopped writer: error message');

($state, $stdout, $stderr) = run_sql('DROP TABLE public.t_stop;',
	$agent, timeout => 60, timed_out => \$timed_out);
ok(!$timed_out, 'parked DROP TABLE with a stopped writer does not hang');
is($state, 'AG001', 'parked DROP TABLE with a stopped writer: SQLSTATE AG001');
like($stderr,
	qr/ERROR:  DROP TABLE on public\.t_stop was not run: it needs approval, and the request could not be stored\nDETAIL:  .*; no request was created: the agent_guard writer did not confirm within agent_guard\.write_timeout \(200 ms\)\./,
	'parked DROP TABLE with a stopped writer: error message says it could not be stored');

# allowed statements still run (their records are not waited for)
($state, $stdout, $stderr) = run_sql('UPDATE public.counter SET n = n WHERE n >= 0;',
	$agent, timeout => 60, timed_out => \$timed_out);
ok(!$timed_out && $state eq '00000', 'an allowed UPDATE runs with a stopped writer')
  or diag($stderr);

is($node->safe_psql('postgres', $table_count_sql), $all_tables,
	'no refused DROP TABLE ran with a stopped writer');
my $log = slurp_file($node->logfile, $log_offset);
like($log,
	qr/LOG:  agent_guard could not store the audit record of a (?:refusal|decision): the agent_guard writer did not confirm within agent_guard\.write_timeout \(200 ms\)/,
	'server log: the refusal record could not be stored');
like($log, qr/LOG:  agent_guard could not store an approval request: /,
	'server log: the request could not be stored');
like($log, qr/agent_guard: \{.*"statement":"DROP TABLE \/\* stop \*\/ public\.d_2".*"decision":"denied"/,
	'server log: JSON line of the unstored denial');
like($log, qr/agent_guard: \{.*"statement":"DROP TABLE public\.t_stop".*"decision":"parked"/,
	'server log: JSON line of the unstored parking');

kill 'CONT', @stopped;

# the next refusal is stored by the same writer; what was given up stays out
($state, $pids, $stderr) = refusal_and_writer('DROP TABLE /* cont */ public.d_3');
is($state, '42501', 'denied DROP TABLE after SIGCONT');
is(audit_count('DROP TABLE /* cont */ public.d_3', 'denied'), '1',
	'denied DROP TABLE after SIGCONT: stored');
is(join(',', @$pids), join(',', @stopped), 'the continued writer stored it');
is(audit_count('DROP TABLE /* stop */ public.d_2', 'denied'), '0',
	'the denial logged as not stored was not stored later');
is(request_count('DROP TABLE public.t_stop'), '0',
	'the request reported as not created was not created later');
is(audit_count('DROP TABLE public.t_stop', 'parked'), '0',
	'no audit row claims the unstored request');

# a writer held up in the middle of storing (waiting for the audit trail's
# lock) is not waited for either; the agent is told that no request was
# created, so none may appear once the writer gets going again
my $locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(1095189319, 1)');
($state, $stdout, $stderr) = run_sql('DROP TABLE public.t_blocked;',
	$agent, timeout => 60, timed_out => \$timed_out);
ok(!$timed_out, 'parked DROP TABLE with a blocked writer does not hang');
is($state, 'AG001', 'parked DROP TABLE with a blocked writer: SQLSTATE AG001');
like($stderr,
	qr/ERROR:  DROP TABLE on public\.t_blocked was not run: it needs approval, and the request could not be stored\n/,
	'parked DROP TABLE with a blocked writer: error message says it could not be stored');
is( $node->safe_psql(
		'postgres',
		"SELECT wait_event FROM pg_stat_activity WHERE backend_type = '$writer_type'"),
	'advisory',
	'the writer was blocked in the middle of storing the request');
$locker->query_safe('SELECT pg_advisory_unlock(1095189319, 1)');
$locker->quit;
set_write_timeout(undef);
($state, $pids, $stderr) = refusal_and_writer('DROP TABLE /* unblocked */ public.d_4');
is(audit_count('DROP TABLE /* unblocked */ public.d_4', 'denied'),
	'1', 'the unblocked writer stores the next refusal');
is(request_count('DROP TABLE public.t_blocked'), '0',
	'the request reported as not created was not created later');
is(audit_count('DROP TABLE public.t_blocked', 'parked'), '0',
	'no audit row claims the unstored request');
is($node->safe_psql('postgres', $table_count_sql), $all_tables,
	'no refused DROP TABLE ran with a blocked writer');


###########################################################################
# 4. A writer terminated after its commit, before its acknowledgement.
###########################################################################

# with a synchronous standby that never comes, the writer's commit is
# durable locally but waits; terminated there, it ends before acknowledging.
# The record is stored: the next writer must not store it a second time.
$node->safe_psql('postgres', "ALTER SYSTEM SET synchronous_standby_names = 'regress_nobody'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', 'SHOW synchronous_standby_names', 'regress_nobody'),
	'synchronous_standby_names set');
my $sync_in = "DROP TABLE public.t_sync;\n";
my ($sync_out, $sync_err) = ('', '');
my $sh = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-U', $agent, '-f', '-' ],
	'<', \$sync_in, '>', \$sync_out, '2>', \$sync_err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
my $waiting = 0;
for (my $i = 0; $i < 10 * $PostgreSQL::Test::Utils::timeout_default && !$waiting; $i++)
{
	$sh->pump_nb;
	$waiting = $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = '$writer_type' AND wait_event = 'SyncRep'"
	) eq '1';
	usleep(100_000) unless $waiting;
}
ok($waiting, 'the writer waits for the synchronous standby after its commit');
my @sync_writer = writer_pids();
kill 'TERM', @sync_writer;
$node->safe_psql('postgres', 'ALTER SYSTEM RESET synchronous_standby_names');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$sync_in .= "\\q\n";
$sh->finish;
like($sync_err,
	qr/ERROR:  DROP TABLE on public\.t_sync (by agent "$agent" was not run: it waits for approval as request \d+|was not run: it needs approval, and the request could not be stored)\n/,
	'DROP TABLE refused while its writer was terminated after the commit');
my ($sync_request) = $sync_err =~ /as request (\d+)/;
is(request_count('DROP TABLE public.t_sync'), '1',
	'one request for the statement, not one per writer');
is(audit_count('DROP TABLE public.t_sync', 'parked'), '1',
	'one audit row for the statement, not one per writer');
is( $node->safe_psql('postgres',
		"SELECT string_agg(id::text, ',') FROM agent_guard.requests WHERE statement = 'DROP TABLE public.t_sync'"),
	$sync_request // '',
	'the stored request is the one the agent was told about');
is($node->safe_psql('postgres', "SELECT to_regclass('public.t_sync') IS NOT NULL"),
	't', 'the DROP TABLE did not run');


###########################################################################
# 5. Restart and crash restart: pending requests survive, are approved
#    afterwards and run exactly once.
###########################################################################

my @req;
foreach my $k (1 .. 2)
{
	my $statement = "UPDATE /* r$k */ public.counter SET n = n + 1";
	($state, $stdout, $stderr) = run_sql("$statement;", $agent);
	is($state, 'AG001', "UPDATE without WHERE $k is parked");
	($req[$k]) = $stderr =~ /as request (\d+)/;
	$req[$k] //= 0;
}
$pending_before = pending_ids();
like($pending_before, qr/\b$req[1],$req[2]\b/, 'both requests are pending');

$node->restart;
is(pending_ids(), $pending_before, 'pending requests survive a restart');

($state, $stdout, $stderr) =
  run_sql("SELECT agent_guard.approve_pending($req[1], 'tap');", $approver);
is($state, '00000', 'request 1 approved after the restart') or diag($stderr);
is($stdout, 'executed', 'approve_pending returns executed');
is($node->safe_psql('postgres', 'SELECT n FROM public.counter'), '1', 'request 1 ran once');

# crash restart: SIGKILL the writer that stored the last refusal
($state, $pids, $stderr) = refusal_and_writer('DROP TABLE /* crash */ public.d_5');
my @crashed = @$pids;
is(scalar @crashed, 1, 'one writer to kill');
$log_offset = -s $node->logfile;
kill 'KILL', @crashed;
ok(wait_for_crash_restart($log_offset), 'server back after the crash');
is(audit_count('DROP TABLE /* crash */ public.d_5', 'denied'), '1',
	'the refusal acknowledged before the crash is stored');
is(pending_ids(), join(',', grep { $_ != $req[1] } split /,/, $pending_before),
	'pending requests survive the crash restart');
is($node->safe_psql('postgres', "SELECT status, rows FROM agent_guard.requests WHERE id = $req[1]"),
	'executed|1', 'the executed request stays executed');

($state, $stdout, $stderr) =
  run_sql("SELECT agent_guard.approve_pending($req[2], 'tap');", $approver);
is($state, '00000', 'request 2 approved after the crash restart') or diag($stderr);
is($stdout, 'executed', 'approve_pending returns executed');
is($node->safe_psql('postgres', 'SELECT n FROM public.counter'), '2', 'request 2 ran once');

($state, $stdout, $stderr) =
  run_sql("SELECT agent_guard.approve_pending($req[1], 'again');", $approver);
is($state, '55000', 'approving an executed request again fails');
like($stderr, qr/ERROR:  request $req[1] is already executed/, 'the error says it is executed');
is($node->safe_psql('postgres', 'SELECT n FROM public.counter'), '2',
	'each approved request ran exactly once');
foreach my $k (1 .. 2)
{
	is( $node->safe_psql(
			'postgres',
			"SELECT string_agg(decision, ',' ORDER BY seq) FROM agent_guard.audit_log
			  WHERE request_id = $req[$k]"),
		'parked,approved,executed',
		"audit rows of request $k: parked, approved, executed");
}

# a request parked by the storm before the crashes, approved now
my $storm_request = $node->safe_psql('postgres',
	"SELECT min(id) FROM agent_guard.requests WHERE status = 'pending' AND statement LIKE 'DROP TABLE /* a%'");
my $storm_table = $node->safe_psql('postgres',
	"SELECT objects[1] FROM agent_guard.requests WHERE id = $storm_request");
($state, $stdout, $stderr) =
  run_sql("SELECT agent_guard.approve_pending($storm_request, 'tap');", $approver);
is($stdout, 'executed', 'a DROP TABLE parked during the SIGTERM storm is approved and run')
  or diag($stderr);
is($node->safe_psql('postgres', "SELECT to_regclass('$storm_table') IS NULL"),
	't', 'the approved DROP TABLE ran');
is($node->safe_psql('postgres', $table_count_sql), $all_tables - 1,
	'only the approved table was dropped');
is($node->safe_psql('postgres', 'SELECT intact FROM agent_guard.verify_audit()'),
	't', 'audit chain intact at the end');

$node->stop;

done_testing();
