# Copyright (c) agent_guard authors

# pg_dump -Fc / pg_restore of a database with agent_guard keeps policies
# (custom ones and an edited default, same ids), requests and approvals,
# the recycle bin (entries and the trashed tables), and the audit trail
# (same seq and hash, chain still intact, anchor of a purge included); the
# guard works in the restored database, into a new database of the same
# cluster and into a fresh cluster.
#
# Agent registrations are not in the database dump.  They are security
# labels on roles, kept in the shared catalog pg_shseclabel, and roles are
# global objects: pg_dump never dumps roles or their labels (and its
# --no-security-labels only leaves out labels on the database's own
# objects, of which agent_guard sets none).  pg_dumpall --globals-only dumps
# the roles with "SECURITY LABEL FOR agent_guard ON ROLE ... IS 'enforce'",
# and pg_dumpall --no-security-labels leaves those out, which silently
# unregisters every agent in the restored cluster.  The realistic path to a
# fresh cluster, tested below: restore the globals (agent_guard preloaded,
# since only a loaded label provider accepts the labels), then pg_restore
# each database.  The globals must come first in any case: policies.agent
# and requests.agent are regrole columns, which are dumped as role names.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AgentGuardTAP;

my $agent = 'regress_dr_bot';
my $human = 'regress_dr_human';

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'agent_guard'
agent_guard.breaker_threshold = 100
});
$node->start;

# Run $sql as $user in $db of this test's node.
sub run_sql { return AgentGuardTAP::run_sql($node, @_); }

###########################################################################
# The source database.
###########################################################################

$node->safe_psql('postgres', qq{
CREATE ROLE $agent LOGIN;
CREATE ROLE $human LOGIN SUPERUSER;
CREATE DATABASE src;
});
$node->safe_psql('src', qq{
CREATE EXTENSION agent_guard;
CREATE TABLE public.orders (id int PRIMARY KEY, item text NOT NULL);
INSERT INTO public.orders VALUES (1, 'apple'), (2, 'pear'), (3, 'plum');
CREATE TABLE public.logs (id int, msg text);
INSERT INTO public.logs SELECT g, 'line ' || g FROM generate_series(1, 5) g;
CREATE TABLE public.tmp_scratch (id int PRIMARY KEY, v text);
INSERT INTO public.tmp_scratch VALUES (1, 'one'), (2, 'two');
ALTER TABLE public.orders OWNER TO $agent;
ALTER TABLE public.logs OWNER TO $agent;
ALTER TABLE public.tmp_scratch OWNER TO $agent;
SET client_min_messages = error;
SELECT agent_guard.register_agent('$agent');
});

# a purge leaves an anchor the chain starts from
$node->safe_psql('src', q{SELECT agent_guard.purge_audit('0 seconds')});
$node->safe_psql('src', qq{
SELECT agent_guard.set_policy('INSERT', 'public.orders', 'deny', '$agent', note => 'dump tap');
SELECT agent_guard.set_policy('DROP TABLE', 'public.tmp_*', 'trash');
-- an edited installed default: DELETE keeps its id 4, with a smaller cap
SELECT agent_guard.set_policy('DELETE', '*', 'allow', max_rows => 2, note => 'edited default');
-- a dropped installed default (MERGE, id 5) must not come back
SELECT agent_guard.drop_policy(5);
});
is($node->safe_psql('src',
		q{SELECT id FROM agent_guard.policies WHERE note = 'edited default'}),
	'4', 'the edited default kept its id');

my ($state, $out, $err);
($state, $out, $err) = run_sql('src', q{INSERT INTO public.orders VALUES (4, 'fig');}, $agent);
is($state, '42501', 'src: denied INSERT');
($state, $out, $err) = run_sql('src', 'DROP TABLE public.orders;', $agent);
is($state, 'AG001', 'src: DROP TABLE parked (stays pending)');
($state, $out, $err) = run_sql('src', 'TRUNCATE public.logs;', $agent);
is($state, 'AG001', 'src: TRUNCATE parked');
my ($truncate_id) = $err =~ /approve_pending\((\d+)\)/;
is($node->safe_psql('src', "SELECT agent_guard.approve_pending($truncate_id, 'ok, logs')",
		extra_params => [ '-U', $human ]),
	'executed', 'src: TRUNCATE approved and executed');
($state, $out, $err) = run_sql('src', 'DROP TABLE public.tmp_scratch;', $agent);
is($state, '00000', 'src: DROP TABLE under trash policy');
($state, $out, $err) = run_sql('src', q{UPDATE public.orders SET item = 'kiwi' WHERE id = 3;}, $agent);
is($state, '00000', 'src: allowed UPDATE');

my %n = map { $_ => $node->safe_psql('src', "SELECT count(*) FROM agent_guard.$_") }
  qw(policies requests approvals trash audit_log audit_anchor);
is($n{requests}, '2', 'src: two requests');
is($node->safe_psql('src', 'SELECT string_agg(status, \',\' ORDER BY id) FROM agent_guard.requests'),
	'pending,executed', 'src: one pending, one executed');
is($n{approvals}, '1', 'src: one approval');
is($n{trash}, '1', 'src: one trash entry');
is($n{audit_anchor}, '1', 'src: the purge left an anchor');
cmp_ok($n{audit_log}, '>=', 7, "src: $n{audit_log} audit rows");
my $max_seq = $node->safe_psql('src', 'SELECT max(seq) FROM agent_guard.audit_log');
is($node->safe_psql('src', 'SELECT intact FROM agent_guard.verify_audit()'), 't',
	'src: chain intact');

###########################################################################
# Dump, restore into a new empty database.
###########################################################################

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
my ($rout, $rerr) = ('', '');
my $restored = IPC::Run::run([ 'pg_restore', '-d', $node->connstr('dst'), $dump ],
	'>', \$rout, '2>', \$rerr);
ok($restored, 'pg_restore exits with 0');
is($rerr, '', 'pg_restore reports nothing');

my %compare = (
	policies => 'SELECT * FROM agent_guard.policies ORDER BY id',
	removed_defaults => 'SELECT * FROM agent_guard.removed_defaults ORDER BY id',
	requests => 'SELECT * FROM agent_guard.requests ORDER BY id',
	approvals => 'SELECT * FROM agent_guard.approvals ORDER BY request_id, approver',
	trash => 'SELECT * FROM agent_guard.trash ORDER BY id',
	audit_log => 'SELECT * FROM agent_guard.audit_log ORDER BY seq',
	audit_anchor => 'SELECT * FROM agent_guard.audit_anchor',
	sequences => q{SELECT (SELECT last_value FROM agent_guard.policies_id_seq),
		(SELECT last_value FROM agent_guard.requests_id_seq),
		(SELECT last_value FROM agent_guard.trash_id_seq),
		(SELECT last_value FROM agent_guard.audit_seq)},
	agents => 'SELECT * FROM agent_guard.agents',
	user_tables => q{SELECT (SELECT string_agg(id || ':' || item, ',' ORDER BY id) FROM public.orders),
		(SELECT count(*) FROM public.logs),
		to_regclass('public.tmp_scratch') IS NULL});
foreach my $what (sort keys %compare)
{
	is($node->safe_psql('dst', $compare{$what}), $node->safe_psql('src', $compare{$what}),
		"restored $what equal");
}
is($node->safe_psql('dst', 'SELECT count(*) FROM agent_guard.policies'), $n{policies},
	'restored: no extra policies (installed defaults merged, not duplicated)');
is($node->safe_psql('dst', q{SELECT action, max_rows, note FROM agent_guard.policies WHERE id = 4}),
	'allow|2|edited default', 'restored: the edited default');
is($node->safe_psql('dst', q{SELECT count(*) FROM agent_guard.policies WHERE id = 5 OR command = 'MERGE'}),
	'0', 'restored: the dropped default stays dropped');
is($node->safe_psql('dst', 'SELECT intact, rows_checked FROM agent_guard.verify_audit()'),
	"t|$n{audit_log}", 'restored: verify_audit() intact');

my $trashed = $node->safe_psql('src', 'SELECT trashed_name FROM agent_guard.trash');
is($node->safe_psql('dst', "SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM agent_guard.$trashed"),
	'1:one,2:two', 'restored: the trashed table exists with its rows');

###########################################################################
# The guard works in the restored database.
###########################################################################

# (writers leave after a few idle seconds: ask from an open session)
my $mon = $node->background_psql('postgres');
($state, $out, $err) = run_sql('dst', 'DROP TABLE public.orders;', $agent);
is($state, 'AG001', 'dst: DROP TABLE parked');
is($mon->query_safe(q{SELECT datname FROM pg_stat_activity WHERE backend_type = 'agent_guard writer'}),
	'dst', 'dst: stored by its own writer');
$mon->quit;
my ($new_id) = $err =~ /approve_pending\((\d+)\)/;
is($new_id, 3, 'dst: the new request continues the restored numbering');
($state, $out, $err) = run_sql('dst', q{INSERT INTO public.orders VALUES (4, 'fig');}, $agent);
is($state, '42501', 'dst: the restored custom deny policy applies');
like($err, qr/[Pp]olicy 7 \(INSERT on public\.orders\)/, 'dst: names policy 7');
($state, $out, $err) = run_sql('dst', 'DELETE FROM public.orders WHERE id > 0;', $agent);
is($state, 'AG002', 'dst: the edited default row cap (2) applies');
is($node->safe_psql('dst', 'SELECT count(*) FROM public.orders'), '3', 'dst: orders intact');

# the pending request restored from the dump can be approved in the copy
my $pending = $node->safe_psql('dst', q{SELECT id FROM agent_guard.requests WHERE status = 'pending' ORDER BY id LIMIT 1});
is($node->safe_psql('dst', "SELECT agent_guard.reject_pending($pending, 'not in the copy')",
		extra_params => [ '-U', $human ]),
	'rejected', 'dst: a restored pending request can be decided');
my $trash_id = $node->safe_psql('dst', 'SELECT id FROM agent_guard.trash');
$node->safe_psql('dst', "SELECT agent_guard.restore_dropped($trash_id)");
is($node->safe_psql('dst', 'SELECT count(*) FROM public.tmp_scratch'), '2',
	'dst: restore_dropped() brings the restored trashed table back');

is($node->safe_psql('dst',
		"SELECT count(*) >= 4, bool_and(database = 'dst'),
		        string_agg(DISTINCT decision, ',' ORDER BY decision) FILTER (WHERE decision <> 'changed')
		   FROM agent_guard.audit_log WHERE seq > $max_seq"),
	# (the capped DELETE leaves two rows: allowed when it started, row_cap)
	't|t|allowed,denied,parked,rejected,row_cap',
	'dst: new decisions are audited in the restored trail, numbered after it');
is($node->safe_psql('dst', 'SELECT intact FROM agent_guard.verify_audit()'), 't',
	'dst: chain intact after new rows');

# the source is untouched by all this
is($node->safe_psql('src', 'SELECT count(*) FROM agent_guard.audit_log'), $n{audit_log},
	'src: audit unchanged by the work in dst');

###########################################################################
# Another cluster: the registry travels with the roles (pg_dumpall -g).
###########################################################################

my $globals = $node->basedir . '/globals.sql';
$node->command_ok([ 'pg_dumpall', '-g', '-f', $globals, '-d', $node->connstr('postgres') ],
	'pg_dumpall --globals-only');
like(slurp_file($globals), qr/^SECURITY LABEL FOR agent_guard ON ROLE $agent IS 'enforce';$/m,
	'pg_dumpall -g carries the agent registration as a security label');
# the trap: without security labels the agents would arrive unregistered
my $globals_nolabels = $node->basedir . '/globals_nolabels.sql';
$node->command_ok([ 'pg_dumpall', '-g', '--no-security-labels', '-f', $globals_nolabels,
		'-d', $node->connstr('postgres') ],
	'pg_dumpall --globals-only --no-security-labels');
unlike(slurp_file($globals_nolabels), qr/SECURITY LABEL/,
	'pg_dumpall --no-security-labels leaves the agent registrations out');
# and pg_dump leaves roles out altogether
my $plain_dump = $node->basedir . '/src.sql';
$node->command_ok([ 'pg_dump', '-f', $plain_dump, '-d', $node->connstr('src') ],
	'pg_dump (plain)');
unlike(slurp_file($plain_dump), qr/SECURITY LABEL|CREATE ROLE/,
	'pg_dump carries no role and no registration');

my $other = PostgreSQL::Test::Cluster->new('other');
$other->init;
$other->append_conf('postgresql.conf', "shared_preload_libraries = 'agent_guard'");
$other->start;
# (only "role postgres already exists" may fail)
my ($gret, $gout, $gerr) = $other->psql('postgres', slurp_file($globals), on_error_stop => 0);
unlike($gerr =~ s/^.*role "postgres" already exists\n?//mr, qr/ERROR/, 'globals restored');
$other->safe_psql('postgres', 'CREATE DATABASE dst');
$restored = IPC::Run::run([ 'pg_restore', '-d', $other->connstr('dst'), $dump ],
	'>', \$rout, '2>', \$rerr);
ok($restored && $rerr eq '', 'pg_restore into the other cluster') or diag($rerr);
is($other->safe_psql('dst', 'SELECT agent, mode, frozen FROM agent_guard.agents'),
	"$agent|enforce|f", 'other cluster: the agent is registered');
foreach my $what (sort keys %compare)
{
	is($other->safe_psql('dst', $compare{$what}), $node->safe_psql('src', $compare{$what}),
		"other cluster: restored $what equal");
}
is($other->safe_psql('dst', 'SELECT intact, rows_checked FROM agent_guard.verify_audit()'),
	"t|$n{audit_log}", 'other cluster: verify_audit() intact');
($state, $out, $err) = $other->psql('dst', 'DROP TABLE public.orders',
	extra_params => [ '-U', $agent ]);
like($err, qr/approve_pending\(3\)/, 'other cluster: the agent is guarded, the request stored');
is($other->safe_psql('dst', q{SELECT decision, request_id FROM agent_guard.audit_log
		ORDER BY seq DESC LIMIT 1}),
	'parked|3', 'other cluster: its writer stored the refusal in the restored trail');
is($other->safe_psql('dst', 'SELECT intact FROM agent_guard.verify_audit()'), 't',
	'other cluster: chain intact after the new row');
is($other->safe_psql('dst', 'SELECT count(*) FROM public.orders'), '3', 'other cluster: orders intact');
$other->stop;

$node->stop;
done_testing();
