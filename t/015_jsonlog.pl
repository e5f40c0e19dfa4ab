
# Copyright (c) agent_guard authors

# With log_destination = jsonlog, PostgreSQL writes each server-log entry as
# one JSON object; agent_guard's record is the entry's "message" field,
# "agent_guard: " followed by its own JSON object.  Both must stay valid
# whatever the statement holds (quotes, backslashes, newlines, tabs,
# non-ASCII text), and every stored audit row must appear exactly once, with
# the same fields and sequence number as in agent_guard.audit_log.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;

my $agent = 'regress_jsonlog_bot';

my $node = PostgreSQL::Test::Cluster->new('jsonlog');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'agent_guard'
logging_collector = on
log_destination = 'stderr,jsonlog'
log_directory = 'log'
log_filename = 'server.log'
log_rotation_age = 0
lc_messages = 'C'
});
$node->start;
my $jsonlog = $node->data_dir . '/log/server.json';

$node->safe_psql('postgres', qq{
	CREATE EXTENSION agent_guard;
	CREATE ROLE $agent LOGIN;
	CREATE TABLE public.notes (id int PRIMARY KEY, note text);
	INSERT INTO public.notes SELECT g, 'note ' || g FROM generate_series(1, 10) g;
	GRANT ALL ON public.notes TO $agent;
	SET client_min_messages = error;
	SELECT agent_guard.register_agent('$agent');
	SELECT agent_guard.set_policy('UPDATE', 'public.notes', 'deny');
});

# statements whose text needs escaping, in both JSON layers
my @statements = (
	q{UPDATE public.notes SET note = 'quote " backslash \\ end' WHERE id = 1},
	"UPDATE public.notes SET note = 'line one\nline two\tand a tab' WHERE id = 2",
	q{UPDATE public.notes SET note = 'Grüße, 日本語, emoji 🙂' WHERE id = 3},
	q{DELETE FROM public.notes},
	q{DROP TABLE public.notes},
);
foreach my $sql (@statements)
{
	my ($ret, $out, $err) = $node->psql('postgres', $sql,
		extra_params => [ '-U', $agent ]);
	isnt($ret, 0, "refused: " . (split /\n/, $sql)[0]);
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM public.notes WHERE note LIKE 'note %'}),
	'10', 'the data is intact');

# the stored rows of the agent's refusals
my $rows = decode_json($node->safe_psql('postgres', qq{
	SELECT coalesce(json_agg(json_build_object('seq', seq, 'command', command,
		'decision', decision, 'statement', statement) ORDER BY seq), '[]')
	  FROM agent_guard.audit_log WHERE agent = '$agent'}));
is(scalar @$rows, scalar @statements, 'one audit row per refused statement');

# the writer logs each row as it stores it; wait until all are there
# the outer decode yields characters; the message inside is decoded as such
my $json_text = JSON::PP->new;
my %logged;
my @bad;
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (1)
{
	%logged = ();
	@bad = ();
	my $text = -f $jsonlog ? slurp_file($jsonlog) : '';
	foreach my $line (split /\n/, $text)
	{
		my $entry = eval { decode_json($line) };
		if (!$entry)
		{
			push @bad, "not JSON: $line";
			next;
		}
		my $message = $entry->{message} // '';
		next unless $message =~ s/^agent_guard: //;
		my $record = eval { $json_text->decode($message) };
		if (!$record)
		{
			push @bad, "agent_guard message is not JSON: $message";
			next;
		}
		next unless ($record->{agent} // '') eq $agent;
		push @{ $logged{ $record->{seq} // 'null' } }, $record;
	}
	last if scalar(keys %logged) >= scalar(@$rows) || time > $deadline;
	sleep 1;
}

is(scalar @bad, 0, 'every jsonlog line and every agent_guard message in it is valid JSON')
  or diag(join "\n", @bad);
foreach my $row (@$rows)
{
	my $records = $logged{ $row->{seq} } // [];
	is(scalar @$records, 1, "audit row $row->{seq} is logged exactly once");
	next unless @$records;
	is_deeply(
		[ map { $records->[0]{$_} } qw(command decision statement) ],
		[ map { $row->{$_} } qw(command decision statement) ],
		"audit row $row->{seq}: the log line carries the row's fields");
}
ok(!exists $logged{null}, 'no refusal was logged as not stored');

$node->stop;
done_testing();
