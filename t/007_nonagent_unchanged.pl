# A session that is not an agent's is untouched (SPEC §11): the same script
# of varied statements gives byte-for-byte the same psql output (stdout and
# stderr) on a server with agent_guard preloaded, created, an agent
# registered and policies that would stop an agent, as on a server without
# the library at all; and it leaves no audit row and no agent_guard log line.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $human = 'regress_same_human';
my $agent = 'regress_same_bot';

# The script, run with psql -a -f (echoing each statement).  Its output must
# not depend on anything but the statements: no OIDs, no timestamps.
my $script = <<'EOSQL';
SET client_min_messages = notice;
SHOW search_path;
SET datestyle = 'ISO, YMD';
SHOW datestyle;
SELECT current_user = session_user AS same_user;
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE orders (id serial PRIMARY KEY,
	customer_id int REFERENCES customers ON DELETE CASCADE,
	amount numeric(10,2) CHECK (amount > 0), note text);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE VIEW big_orders AS
	SELECT o.id, c.name, o.amount FROM orders o JOIN customers c ON c.id = o.customer_id
	 WHERE o.amount > 50;
INSERT INTO customers VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');
INSERT INTO orders (customer_id, amount, note)
	SELECT g % 3 + 1, g * 10.5, 'n' || g FROM generate_series(1, 9) g RETURNING id, amount;
INSERT INTO customers VALUES (1, 'dup');
INSERT INTO orders (customer_id, amount) VALUES (9, 5);
INSERT INTO orders (customer_id, amount) VALUES (1, -5);
SELECT 1 / 0;
SELECT * FROM big_orders ORDER BY id;
UPDATE orders SET note = upper(note) WHERE customer_id = 2 RETURNING id, note;
UPDATE orders SET amount = amount + 1;
CREATE FUNCTION customer_total(cid int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
	t numeric;
BEGIN
	SELECT sum(amount) INTO t FROM orders WHERE customer_id = cid;
	IF t IS NULL THEN
		RAISE NOTICE 'no orders for customer %', cid;
		RETURN 0;
	END IF;
	RETURN t;
END
$$;
SELECT id, customer_total(id) FROM customers ORDER BY id;
SELECT customer_total(42);
CREATE OR REPLACE FUNCTION customer_total(cid int) RETURNS numeric LANGUAGE sql
	AS $$ SELECT coalesce(sum(amount), -1) FROM orders WHERE customer_id = cid $$;
SELECT customer_total(42);
DO $$ BEGIN RAISE NOTICE 'do block ran'; END $$;
DO $$ BEGIN PERFORM 1 / 0; END $$;
COPY (SELECT id, name FROM customers ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER);
COPY orders (customer_id, amount, note) FROM STDIN;
3	7.25	copied
\.
EXPLAIN (COSTS OFF) SELECT * FROM orders WHERE customer_id = 1 ORDER BY id;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) DELETE FROM orders WHERE id = 1;
BEGIN;
DELETE FROM orders;
SELECT count(*) FROM orders;
ROLLBACK;
SELECT count(*) FROM orders;
BEGIN;
SAVEPOINT s;
DROP TABLE orders CASCADE;
ROLLBACK TO SAVEPOINT s;
SELECT count(*) FROM big_orders;
SELECT 1 / 0;
SELECT 1;
ROLLBACK;
ALTER TABLE orders ADD COLUMN status text DEFAULT 'new';
ALTER TABLE orders DROP COLUMN note;
ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12,2);
SELECT id, customer_id, amount, status FROM orders ORDER BY id;
PREPARE double_it(int) AS SELECT $1 * 2 AS doubled;
EXECUTE double_it(21);
DEALLOCATE double_it;
CREATE TEMP TABLE scratch AS SELECT g FROM generate_series(1, 3) g;
SELECT * FROM scratch ORDER BY g;
VACUUM customers;
ANALYZE orders;
DELETE FROM orders WHERE amount > 60 RETURNING id;
DELETE FROM orders;
TRUNCATE customers;
TRUNCATE customers CASCADE;
SELECT (SELECT count(*) FROM customers) AS customers, (SELECT count(*) FROM orders) AS orders;
DROP TABLE customers;
DROP TABLE customers CASCADE;
DROP VIEW big_orders;
DROP FUNCTION customer_total(int);
DROP TABLE orders;
LISTEN same_channel;
NOTIFY same_channel, 'hello';
UNLISTEN same_channel;
RESET datestyle;
SHOW datestyle;
SELECT count(*) FROM pg_tables WHERE schemaname = 'public';
EOSQL

# Both clusters: the same roles and databases; one has agent_guard in full use.
sub setup_node
{
	my ($name, $guarded) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'agent_guard'
agent_guard.audit_reads = on
}) if $guarded;
	$node->start;
	$node->safe_psql('postgres', qq{
		CREATE ROLE $human LOGIN;
		CREATE ROLE $agent LOGIN;
		-- the agent is a member of the human role: that does not make the human an agent
		GRANT $human TO $agent;
		CREATE DATABASE app_human OWNER $human;
		CREATE DATABASE app_admin;
	});
	return $node unless $guarded;
	foreach my $db ('app_human', 'app_admin')
	{
		$node->safe_psql($db, qq{
			CREATE EXTENSION agent_guard;
			SET client_min_messages = error;
			SELECT agent_guard.register_agent('$agent') WHERE '$db' = 'app_human';
			SELECT agent_guard.set_policy('DROP TABLE', 'public.*', 'deny');
			SELECT agent_guard.set_policy('INSERT', 'public.customers', 'deny');
			SELECT agent_guard.set_policy('EXECUTE', 'public.*', 'require_approval');
			SELECT agent_guard.set_policy('ALL', 'public.orders', 'deny');
			SELECT agent_guard.set_policy('READ', '*', 'deny');
		});
	}
	return $node;
}

my $plain = setup_node('plain', 0);
my $guarded = setup_node('guarded', 1);
is($guarded->safe_psql('app_human', 'SELECT agent::text, mode FROM agent_guard.agents'),
	"$agent|enforce", 'the guarded cluster has an agent');

my $file = $guarded->basedir . '/same.sql';
open my $fh, '>', $file or die "could not write $file: $!";
print $fh $script;
close $fh;

# Run the script; returns (stdout, stderr), normalised for what may differ
# between two servers for reasons unrelated to the statements.
sub run_script
{
	my ($node, $db, $user) = @_;
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run(
		[ 'psql', '-X', '-a', '-d', $node->connstr($db), '-U', $user, '-f', $file ],
		'<', \undef, '>', \$stdout, '2>', \$stderr,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	foreach ($stdout, $stderr)
	{
		s/server process with PID \d+/server process with PID <pid>/g;
		s/\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:\d\d)?)?/<timestamp>/g;
	}
	return ($stdout, $stderr);
}

my $audit_sql = 'SELECT count(*) FROM agent_guard.audit_log';
foreach my $case ([ 'app_human', $human, 'a plain non-agent role' ],
	[ 'app_admin', 'postgres', 'the superuser' ])
{
	my ($db, $user, $who) = @$case;
	my $audit_before = $guarded->safe_psql($db, $audit_sql);
	my $log_offset = -s $guarded->logfile;

	my ($plain_out, $plain_err) = run_script($plain, $db, $user);
	my ($guarded_out, $guarded_err) = run_script($guarded, $db, $user);

	# the script did run, errors and all
	like($plain_out, qr/^id,name\n1,ann\n2,bob\n3,cy$/m,
		"$who: COPY TO STDOUT output is there");
	like($plain_err, qr/ERROR:  division by zero/, "$who: the script's errors are there");
	like($plain_out, qr/Asynchronous notification "same_channel" with payload "hello"/,
		"$who: NOTIFY was delivered");

	is($guarded_out, $plain_out, "$who: stdout is the same with and without agent_guard");
	is($guarded_err, $plain_err, "$who: stderr is the same with and without agent_guard");

	my $log = slurp_file($guarded->logfile, $log_offset);
	unlike($log, qr/agent_guard/, "$who: no agent_guard line in the server log");
	is($guarded->safe_psql($db, $audit_sql), $audit_before, "$who: no audit row");
}

$plain->stop;
$guarded->stop;
done_testing();
