# Fuzz run (SPEC §11, issue 6): thousands of random, truncated and malformed
# statements through one agent session -- mutations of real dangerous
# statements, deep nesting, huge literals, random and invalid bytes under
# several client encodings.  Afterwards the server is still up and never
# restarted, the audit chain holds, the protected table is unchanged, and a
# statement that was denied before is still denied.  The random seed is
# fixed, so a failure replays.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $seed = $ENV{AG_FUZZ_SEED} // 20261123;
my $count = $ENV{AG_FUZZ_COUNT} // 3000;
srand($seed);
note "seed $seed, $count statements";

my $agent = 'regress_fuzz_bot';
my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'agent_guard'
log_statement = none
log_min_error_statement = panic
# every refusal counts: keep the breaker from stopping the run half-way
agent_guard.breaker_threshold = 1000000
});
$node->start;

# The agent owns the protected table (PostgreSQL would let it do anything
# to it): only the guard stands in the way.  Its scratch schema is open, so
# many fuzzed statements do run and take the executor paths.
$node->safe_psql('postgres', qq{
	CREATE EXTENSION agent_guard;
	CREATE ROLE $agent LOGIN;
	CREATE SCHEMA scratch AUTHORIZATION $agent;
	CREATE TABLE public.ledger (id int PRIMARY KEY, amount numeric NOT NULL, note text);
	INSERT INTO public.ledger SELECT g, g * 1.5, 'entry ' || g FROM generate_series(1, 200) g;
	CREATE TABLE public.ledger_lines (ledger_id int REFERENCES public.ledger, qty int);
	INSERT INTO public.ledger_lines SELECT g % 200 + 1, g FROM generate_series(1, 500) g;
	ALTER TABLE public.ledger OWNER TO $agent;
	ALTER TABLE public.ledger_lines OWNER TO $agent;
	CREATE TABLE scratch.t (id int, v text);
	ALTER TABLE scratch.t OWNER TO $agent;
	INSERT INTO scratch.t SELECT g, 'v' || g FROM generate_series(1, 50) g;
	CREATE TABLE public.fuzz (id int PRIMARY KEY, stmt text NOT NULL);
	GRANT SELECT ON public.fuzz TO $agent;
	ALTER ROLE $agent SET statement_timeout = '5s';
	SET client_min_messages = error;
	SELECT agent_guard.register_agent('$agent');
	-- nothing changes the ledger: the groups, and the commands the
	-- installed defaults allow by name
	SELECT agent_guard.set_policy(c, 'public.ledger*', 'deny')
	  FROM unnest(ARRAY['WRITE', 'DDL', 'DESTRUCTIVE', 'UPDATE', 'DELETE', 'MERGE']) c;
	SELECT agent_guard.set_policy('ALL', 'scratch.*', 'allow');
	SELECT agent_guard.set_policy('EXECUTE', 'pg_catalog.pg_terminate_backend', 'deny');
	SELECT agent_guard.set_policy('EXECUTE', 'pg_catalog.lo_unlink', 'deny');
});

my $data_sql = q{SELECT count(*), md5(string_agg(id || ':' || amount || ':' || note, ',' ORDER BY id))
	FROM public.ledger};
my $lines_sql = q{SELECT count(*), sum(qty) FROM public.ledger_lines};
my $policies_sql = q{SELECT md5(string_agg(concat_ws(':', id, agent, command, object_pattern, action,
	max_rows, enabled), ',' ORDER BY id)) FROM agent_guard.policies};
my $policies_before = $node->safe_psql('postgres', $policies_sql);
my $data_before = $node->safe_psql('postgres', $data_sql);
my $extension_sql = q{SELECT extversion FROM pg_extension WHERE extname = 'agent_guard'};
my $extension_before = $node->safe_psql('postgres', $extension_sql);
my $lines_before = $node->safe_psql('postgres', $lines_sql);

# A statement every check below expects to be refused, before and after.
my $known_denied = 'DROP TABLE public.ledger';

sub agent_psql
{
	my ($sql, %opts) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', $sql,
		stdout => \$out, stderr => \$err, on_error_stop => 0,
		extra_params => [ '-U', $agent, @{ $opts{extra} // [] } ]);
	return ($rc, $out, $err);
}

my (undef, undef, $err) = agent_psql("$known_denied;");
like($err, qr/DROP TABLE on public\.ledger is not allowed for agent "$agent"/,
	'the known statement is denied before the run');

# ---------- the corpus: real dangerous statements ----------

my @corpus = (
	'DROP TABLE public.ledger',
	'DROP TABLE public.ledger CASCADE',
	'DROP TABLE public.ledger, scratch.t',
	'TRUNCATE public.ledger',
	'TRUNCATE public.ledger, public.ledger_lines CASCADE',
	'DELETE FROM public.ledger',
	'DELETE FROM public.ledger WHERE true',
	'DELETE FROM public.ledger WHERE id > 0',
	'DELETE FROM public.ledger_lines USING public.ledger',
	'UPDATE public.ledger SET amount = 0',
	'UPDATE public.ledger SET note = NULL WHERE id % 2 = 0',
	'WITH gone AS (DELETE FROM public.ledger RETURNING *) SELECT count(*) FROM gone',
	'WITH x AS (UPDATE public.ledger SET amount = -amount RETURNING id) INSERT INTO scratch.t SELECT id, NULL FROM x',
	'MERGE INTO public.ledger l USING scratch.t s ON l.id = s.id WHEN MATCHED THEN DELETE',
	'INSERT INTO public.ledger VALUES (1000, 1, $$x$$)',
	'ALTER TABLE public.ledger DROP COLUMN note',
	'ALTER TABLE public.ledger ALTER COLUMN amount TYPE int',
	'ALTER TABLE public.ledger RENAME TO ledger_old',
	'ALTER TABLE public.ledger SET SCHEMA scratch',
	'ALTER TABLE public.ledger DISABLE TRIGGER ALL',
	'ALTER TABLE public.ledger OWNER TO postgres',
	'CREATE RULE r AS ON INSERT TO scratch.t DO INSTEAD DELETE FROM public.ledger',
	'CREATE OR REPLACE FUNCTION scratch.f() RETURNS int LANGUAGE sql AS $$DELETE FROM public.ledger RETURNING 1$$',
	'SELECT scratch.f()',
	'CREATE OR REPLACE FUNCTION scratch.g() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN TRUNCATE public.ledger; RETURN NEW; END$$',
	'CREATE TRIGGER tg BEFORE INSERT ON scratch.t FOR EACH ROW EXECUTE FUNCTION scratch.g()',
	'INSERT INTO scratch.t VALUES (1, $$a$$)',
	'DO $$BEGIN EXECUTE $q$DROP TABLE public.ledger$q$; END$$',
	'DO $$BEGIN EXECUTE format($q$%s %s$q$, $q$TRUNCATE$q$, $q$public.ledger$q$); END$$',
	'DO $$DECLARE n text := $q$session_replication_role$q$; BEGIN PERFORM set_config(n, $q$replica$q$, false); END$$',
	'PREPARE p AS DELETE FROM public.ledger',
	'EXECUTE p',
	'DEALLOCATE ALL',
	'BEGIN',
	'COMMIT',
	'ROLLBACK',
	'SAVEPOINT s',
	'ROLLBACK TO SAVEPOINT s',
	'DECLARE c CURSOR WITH HOLD FOR SELECT * FROM public.ledger',
	'FETCH 5 FROM c',
	'CLOSE c',
	'SET session_replication_role = replica',
	'SET LOCAL agent_guard.enabled = off',
	'SET agent_guard.log_statement = off',
	'RESET agent_guard.breaker_threshold',
	'SELECT set_config($$agent_guard.enabled$$, $$off$$, false)',
	'SELECT set_config(name, $$off$$, false) FROM pg_settings WHERE name LIKE $$agent_guard.%$$',
	'UPDATE pg_settings SET setting = $$replica$$ WHERE name = $$session_replication_role$$',
	'ALTER SYSTEM SET agent_guard.enabled = off',
	'ALTER ROLE CURRENT_USER SET agent_guard.enabled = off',
	'ALTER ROLE CURRENT_USER RESET ALL',
	'LOAD $$auto_explain$$',
	'DROP EXTENSION agent_guard',
	'DROP EXTENSION agent_guard CASCADE',
	'ALTER EXTENSION agent_guard UPDATE',
	'DROP SCHEMA agent_guard CASCADE',
	'DELETE FROM agent_guard.policies',
	'UPDATE agent_guard.policies SET action = $$allow$$',
	'INSERT INTO agent_guard.policies (command, object_pattern, action) VALUES ($$ALL$$, $$*$$, $$allow$$)',
	'SELECT agent_guard.set_policy($$ALL$$, $$*$$, $$allow$$)',
	'SELECT agent_guard.unregister_agent(current_user::regrole)',
	'SELECT agent_guard.approve_pending(1)',
	'SELECT agent_guard.reset_breaker(current_user::regrole)',
	'SELECT agent_guard.purge_audit($$0 seconds$$)',
	'SELECT * FROM agent_guard.evaluate($$DROP TABLE public.ledger$$, current_user::regrole)',
	'SELECT * FROM agent_guard.my_requests',
	'SELECT * FROM agent_guard.wait_for_decision(1, $$10 milliseconds$$)',
	'SECURITY LABEL FOR agent_guard ON ROLE CURRENT_USER IS NULL',
	'GRANT ALL ON public.ledger TO PUBLIC',
	'REVOKE ALL ON public.ledger FROM PUBLIC',
	'CREATE ROLE regress_fuzz_other SUPERUSER',
	'COPY public.ledger TO PROGRAM $$cat$$',
	'COPY public.ledger FROM PROGRAM $$echo 1$$',
	'COPY public.ledger TO $$/tmp/agent_guard_fuzz_probe$$',
	'COPY (SELECT 1) TO STDOUT',
	'VACUUM FULL public.ledger',
	'CLUSTER public.ledger USING ledger_pkey',
	'REINDEX TABLE public.ledger',
	'LOCK TABLE public.ledger IN ACCESS EXCLUSIVE MODE',
	'DROP OWNED BY CURRENT_USER',
	'REASSIGN OWNED BY CURRENT_USER TO postgres',
	'CREATE TABLE scratch.big AS SELECT g FROM generate_series(1, 100) g',
	'DROP TABLE scratch.big',
	'SELECT pg_terminate_backend(0)',
	'SELECT lo_unlink(0)',
	'SELECT count(*) FROM public.ledger',
	'SELECT * FROM scratch.t WHERE id < 3',
	'EXPLAIN ANALYZE DELETE FROM public.ledger',
	'EXPLAIN DELETE FROM public.ledger',
	'CALL scratch.nothing()',
	'NOTIFY agent_guard_pending, $${}$$',
	'DISCARD ALL',
	'RESET ALL',
	'SET ROLE postgres',
	'SET SESSION AUTHORIZATION postgres',
	'SELECT 1; DROP TABLE public.ledger; SELECT 2',
	'DELETE FROM public.ledger /* ; */ WHERE id = 1 -- ; TRUNCATE public.ledger',
);

my @tokens = (
	qw{SELECT DELETE UPDATE INSERT DROP TRUNCATE ALTER CREATE TABLE FUNCTION FROM WHERE
	  CASCADE RESTRICT ONLY USING SET RESET ROLE LOCAL SESSION ALL WITH AS RETURNING
	  VALUES INTO ON DO BEGIN END COMMIT ROLLBACK EXECUTE PREPARE COPY TO PROGRAM
	  public.ledger scratch.t agent_guard.policies agent_guard pg_settings set_config
	  ( ) (( )) ; ;; ' '' " $$ $q$ $1 $2 :: * = <> /* */ -- \\ NULL true 0 -1
	  9999999999999999999999 1e308 'x' E'\\x' U&'\\0041' $$x$$},
	',', "\t", "\n", ' ');

# mutations of a real statement
sub mutate
{
	my ($s) = @_;
	my $ops = 1 + int(rand(3));
	for (1 .. $ops)
	{
		my $op = int(rand(9));
		my $pos = length($s) ? int(rand(length($s))) : 0;
		if ($op == 0) { $s = substr($s, 0, $pos); }    # truncated
		elsif ($op == 1) { substr($s, $pos, 1, ''); }
		elsif ($op == 2) { substr($s, $pos, 0, $tokens[ rand @tokens ] . ' '); }
		elsif ($op == 3) { substr($s, $pos, 0, chr(32 + int(rand(95)))); }
		elsif ($op == 4) { $s = $s . ' ' . $tokens[ rand @tokens ]; }
		elsif ($op == 5) { $s = $s . '; ' . $corpus[ rand @corpus ]; }
		elsif ($op == 6) { $s = uc($s) if rand() < 0.5; $s = lc($s) if rand() < 0.5; }
		elsif ($op == 7)
		{
			# a character from further away in Unicode
			my @wide = (0xe9, 0x3b1, 0x416, 0x4e2d, 0x1f600, 0xfeff, 0x200b, 0xff07);
			substr($s, $pos, 0, chr($wide[ rand @wide ]));
		}
		else { substr($s, $pos, 0, substr($s, 0, $pos)); }    # duplicated prefix
	}
	return $s;
}

sub token_soup
{
	my $n = 1 + int(rand(30));
	return join(' ', map { $tokens[ rand @tokens ] } 1 .. $n);
}

my @statements;
for my $i (1 .. $count)
{
	my $r = rand();
	if ($r < 0.15) { push @statements, $corpus[ rand @corpus ]; }
	elsif ($r < 0.80) { push @statements, mutate($corpus[ rand @corpus ]); }
	else { push @statements, token_soup(); }
}

# deep nesting and huge literals
push @statements,
  'SELECT ' . ('(' x 1000) . '1' . (')' x 1000),
  'SELECT ' . ('(' x 100000) . '1' . (')' x 100000),
  'SELECT ' . ('(SELECT ' x 1000) . '1' . (')' x 1000),
  'DELETE FROM public.ledger WHERE id IN ' . ('(SELECT id FROM public.ledger WHERE id IN ' x 200)
  . '(1)' . (')' x 200),
  'SELECT ' . join(' + ', ('1') x 20000),
  'SELECT ' . ('ARRAY[' x 500) . '1' . (']' x 500),
  'SELECT ' . ('-' x 5000) . '1',
  'DO $$BEGIN ' . ('BEGIN ' x 300) . 'DELETE FROM public.ledger; ' . ('END; ' x 300) . 'END$$',
  "INSERT INTO scratch.t VALUES (1, '" . ('x' x (10 * 1024 * 1024)) . "')",
  "TRUNCATE public.ledger /* " . ('y' x (10 * 1024 * 1024)) . " */",
  "SELECT set_config('" . ('z' x 100000) . "', 'x', false)",
  "DROP TABLE public.\"" . ('w' x 10000) . "\"",
  'SELECT ' . join(', ', map { "'$_'" } 1 .. 5000),
  "SELECT \$\$" . ('\\' x 100000) . "\$\$";

# Each statement is one row; \gexec sends the rows one query each, at top
# level of the agent's session, with no client-side parsing to trip over
# unbalanced quotes.  A ROLLBACK after each keeps a failed transaction from
# eating the rest.
my $copy_file = $node->basedir . '/fuzz.copy';
open(my $fh, '>:encoding(UTF-8)', $copy_file) or die "could not write $copy_file: $!";
my $id = 0;
foreach my $s (@statements)
{
	foreach my $row ($s, 'ROLLBACK')
	{
		(my $escaped = $row) =~ s/\\/\\\\/g;
		$escaped =~ s/\t/\\t/g;
		$escaped =~ s/\n/\\n/g;
		$escaped =~ s/\r/\\r/g;
		$escaped =~ s/\0//g;
		print $fh ++$id, "\t", $escaped, "\n";
	}
}
close($fh);
$node->safe_psql('postgres', "\\copy public.fuzz FROM '$copy_file'");
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.fuzz'),
	$id, 'the fuzz statements are loaded');

my $start = time();
my ($rc, $out);
($rc, $out, $err) = agent_psql('SELECT stmt FROM public.fuzz ORDER BY id \gexec',
	extra => [ '-q', '-o', '/dev/null' ]);
note sprintf('%d statements through the agent session in %.1f s', scalar(@statements),
	time() - $start);
ok($rc != 2, 'the agent session was not lost');

# Random bytes, invalid UTF-8 and client encodings whose multibyte
# characters hide quotes and backslashes, sent as the bytes they are.
my @encodings = ('UTF8', 'SQL_ASCII', 'LATIN1', 'SJIS', 'BIG5', 'GB18030');
my $raw_file = $node->basedir . '/fuzz.raw';
foreach my $encoding (@encodings)
{
	open(my $raw, '>:raw', $raw_file) or die "could not write $raw_file: $!";
	for (1 .. 100)
	{
		my $base = $corpus[ rand @corpus ];
		my $pos = int(rand(length($base) + 1));
		my $junk = join('', map { chr(int(rand(256))) } 1 .. 1 + int(rand(8)));
		$junk =~ s/[\0\n\\;]/\x81/g;
		substr($base, $pos, 0, $junk);
		# close any quote the junk opened, then end the statement
		print $raw $base, "\n;\n'\n;\n\$\$\n;\n", "ROLLBACK;\n";
	}
	print $raw "\xff\xfe\xc0\xaf\xed\xa0\x80 SELECT 1;\n", "SELECT '\x83\x27 DROP TABLE public.ledger; --';\n";
	close($raw);
	# the encoding is set first (from standard input), then the file runs
	my ($raw_rc) = agent_psql("SET client_encoding = '$encoding';",
		extra => [ '-q', '-o', '/dev/null', '-f', $raw_file ]);
	ok($raw_rc != 2, "raw bytes under client_encoding $encoding sent");
}

# ---------- the verdict ----------

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
my $log = slurp_file($node->logfile);
unlike($log, qr/server process .* (was terminated by signal|exited with exit code)/,
	'no backend crashed');
unlike($log, qr/terminating any other active server processes|all server processes terminated/,
	'the server never restarted');
unlike($log, qr/TRAP:|PANIC:/, 'no assertion failure or panic');
is($node->safe_psql('postgres', $data_sql), $data_before, 'the protected table is unchanged');
is($node->safe_psql('postgres', $lines_sql), $lines_before, 'the table referencing it is unchanged');
is($node->safe_psql('postgres', 'SELECT intact FROM agent_guard.verify_audit()'),
	't', 'the audit chain is intact');
is($node->safe_psql('postgres', q{SELECT count(*) FROM agent_guard.agents
	WHERE agent = 'regress_fuzz_bot'::regrole AND mode = 'enforce'}),
	'1', 'the agent is still registered and enforced');
is($node->safe_psql('postgres', $policies_sql), $policies_before, 'the policies are as they were');
is($node->safe_psql('postgres', $extension_sql), $extension_before,
	'the extension is installed as it was');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_db_role_setting
	WHERE setrole = 'regress_fuzz_bot'::regrole}),
	'1', 'the agent changed none of its stored settings');
ok(!-e '/tmp/agent_guard_fuzz_probe', 'no server file was written');
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM agent_guard.audit_log
	WHERE decision = 'denied'}), '>', 100, 'refusals were audited');

(undef, undef, $err) = agent_psql("$known_denied;");
like($err, qr/DROP TABLE on public\.ledger is not allowed for agent "$agent"/,
	'the known statement is still denied after the run');
(undef, undef, $err) = agent_psql('SET agent_guard.enabled = off;');
like($err, qr/not allowed for agent|agents may not change agent_guard settings/,
	'agent_guard settings are still refused');

$node->stop;
done_testing();
