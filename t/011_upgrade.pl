# Copyright (c) agent_guard authors

# Upgrades: CREATE EXTENSION agent_guard VERSION '1.0', use it, ALTER
# EXTENSION agent_guard UPDATE TO '1.1': policies, requests, audit trail and
# registrations are kept, the guard keeps working (in a session open across
# the update too), a request parked under 1.0 is approved under 1.1, and the
# new objects (pending_summary, comments) exist.  An upgraded database ends
# up with the same objects as a fresh install of 1.1 (today built by the same
# 1.0 script plus the update; the check holds whoever writes a full
# agent_guard--1.1.sql later).  The one C library serves a 1.0 and a 1.1
# database side by side: it depends on nothing 1.1 adds.  Versions are named
# explicitly, so the test does not depend on default_version.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AgentGuardTAP;

my $agent = 'regress_up_bot';
my $human = 'regress_up_human';

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'agent_guard'
agent_guard.breaker_threshold = 100
});
$node->start;

# Run $sql as $user in $db of this test's node.
sub run_sql { return AgentGuardTAP::run_sql($node, @_); }

# Members of the extension with what defines them, for comparing installs.
my $members_sql = q{
	SELECT pg_describe_object(d.classid, d.objid, 0) AS member,
		   coalesce(pg_get_viewdef(d.objid), '') AS viewdef,
		   coalesce(pg_get_functiondef(d.objid), '') AS funcdef,
		   coalesce(obj_description(d.objid, d.classid::regclass::text), '') AS comment,
		   coalesce((SELECT relacl::text FROM pg_class WHERE oid = d.objid
					 AND d.classid = 'pg_class'::regclass), '') AS acl
	  FROM pg_depend d
	 WHERE d.refclassid = 'pg_extension'::regclass
	   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'agent_guard')
	   AND d.deptype = 'e'
	 ORDER BY 1};

$node->safe_psql('postgres', qq{
CREATE ROLE $agent LOGIN;
CREATE ROLE $human LOGIN SUPERUSER;
CREATE DATABASE up;
CREATE DATABASE fresh;
CREATE DATABASE old;
});

is($node->safe_psql('postgres',
		q{SELECT string_agg(version, ',' ORDER BY version) FROM pg_available_extension_versions
		   WHERE name = 'agent_guard'}),
	'1.0,1.1', 'versions 1.0 and 1.1 are available');
is($node->safe_psql('postgres',
		q{SELECT string_agg(source || '->' || target || ':' || path, ',' ORDER BY source, target)
		    FROM pg_extension_update_paths('agent_guard') WHERE path IS NOT NULL}),
	'1.0->1.1:1.0--1.1', 'update path 1.0 -> 1.1');

###########################################################################
# Install 1.0 and use it.
###########################################################################

$node->safe_psql($_, q{CREATE EXTENSION agent_guard VERSION '1.0'}) foreach ('up', 'old');
# registrations are cluster-wide: once is enough
$node->safe_psql('up', "SET client_min_messages = error; SELECT agent_guard.register_agent('$agent')");
foreach my $db ('up', 'old')
{
	$node->safe_psql($db, qq{
CREATE TABLE public.orders (id int PRIMARY KEY, item text NOT NULL);
INSERT INTO public.orders VALUES (1, 'apple'), (2, 'pear'), (3, 'plum');
CREATE TABLE public.logs (id int);
INSERT INTO public.logs SELECT generate_series(1, 5);
ALTER TABLE public.orders OWNER TO $agent;
ALTER TABLE public.logs OWNER TO $agent;
SET client_min_messages = error;
SELECT agent_guard.set_policy('INSERT', 'public.orders', 'deny', '$agent', note => 'upgrade tap');
});
}
is($node->safe_psql('up', q{SELECT extversion FROM pg_extension WHERE extname = 'agent_guard'}),
	'1.0', 'installed 1.0');
is($node->safe_psql('up', q{SELECT to_regclass('agent_guard.pending_summary') IS NULL}),
	't', '1.0 has no pending_summary');

my ($state, $out, $err);
($state, $out, $err) = run_sql('up', 'DROP TABLE public.orders;', $agent);
is($state, 'AG001', '1.0: DROP TABLE parked');
($state, $out, $err) = run_sql('up', 'TRUNCATE public.logs;', $agent);
is($state, 'AG001', '1.0: TRUNCATE parked');
my ($truncate_id) = $err =~ /approve_pending\((\d+)\)/;
($state, $out, $err) = run_sql('up', q{INSERT INTO public.orders VALUES (4, 'fig');}, $agent);
is($state, '42501', '1.0: denied INSERT');

# an agent may not upgrade the extension (ADMIN)
($state, $out, $err) = run_sql('up', q{ALTER EXTENSION agent_guard UPDATE TO '1.1';}, $agent);
is($state, '42501', 'an agent may not ALTER EXTENSION agent_guard UPDATE');
is($node->safe_psql('up', q{SELECT extversion FROM pg_extension WHERE extname = 'agent_guard'}),
	'1.0', 'still 1.0 after the agent tried');

# an agent session open across the update: the library's cached state
# (extension, tables, policies) stays valid
my $open = $node->background_psql('up', extra_params => [ '-U', $agent ], on_error_stop => 0);
$open->query(q{INSERT INTO public.orders VALUES (5, 'lime')});
like($open->{stderr}, qr/policy \d+ denies it/, 'open session, 1.0: denied INSERT');

my %before = map { $_ => $node->safe_psql('up', "SELECT * FROM agent_guard.$_ ORDER BY 1") }
  qw(policies requests approvals audit_log trash agents);

###########################################################################
# ALTER EXTENSION UPDATE.
###########################################################################

$node->safe_psql('up', q{ALTER EXTENSION agent_guard UPDATE TO '1.1'});
is($node->safe_psql('up', q{SELECT extversion FROM pg_extension WHERE extname = 'agent_guard'}),
	'1.1', 'updated to 1.1');
foreach my $what (sort keys %before)
{
	is($node->safe_psql('up', "SELECT * FROM agent_guard.$what ORDER BY 1"), $before{$what},
		"$what unchanged by the update");
}
is($node->safe_psql('up', 'SELECT intact FROM agent_guard.verify_audit()'), 't',
	'audit chain intact after the update');

# the new objects
is($node->safe_psql('up', 'SELECT agent, pending FROM agent_guard.pending_summary'),
	"$agent|2", 'pending_summary: the two pending requests');
is($node->safe_psql('up',
		q{SELECT obj_description('agent_guard.pending_summary'::regclass, 'pg_class') IS NOT NULL,
		         obj_description('agent_guard.approve_pending(bigint,text)'::regprocedure, 'pg_proc') IS NOT NULL}),
	't|t', 'comments are installed');
is($node->safe_psql('up',
		q{SELECT coalesce(string_agg(what, ', ' ORDER BY what), '') FROM (
			SELECT p.oid::regprocedure::text AS what FROM pg_proc p
			 WHERE p.pronamespace = 'agent_guard'::regnamespace
			   AND p.prorettype <> 'trigger'::regtype AND p.proname <> 'audit_digest'
			   AND obj_description(p.oid, 'pg_proc') IS NULL
			UNION ALL
			SELECT c.oid::regclass::text FROM pg_class c
			 WHERE c.relnamespace = 'agent_guard'::regnamespace AND c.relkind = 'v'
			   AND obj_description(c.oid, 'pg_class') IS NULL) missing}),
	'', 'every view and every function of the API has a comment');
is($node->safe_psql('up',
		q{SELECT count(*) FROM pg_depend WHERE objid = 'agent_guard.pending_summary'::regclass
		    AND refclassid = 'pg_extension'::regclass AND deptype = 'e'}),
	'1', 'pending_summary belongs to the extension');
($state, $out, $err) = run_sql('up', 'SELECT * FROM agent_guard.pending_summary;', $agent);
is($state, '42501', 'an agent may not read pending_summary');

# the guard works as before, in the session that was open during the update
$open->{stderr} = '';
$open->query(q{INSERT INTO public.orders VALUES (5, 'lime')});
like($open->{stderr}, qr/policy \d+ denies it/, 'open session, 1.1: denied INSERT');
$open->{stderr} = '';
is($open->query('SELECT count(*) FROM public.orders'), '3', 'open session, 1.1: the agent reads');
$open->quit;

# and in new sessions
($state, $out, $err) = run_sql('up', q{INSERT INTO public.orders VALUES (4, 'fig');}, $agent);
is($state, '42501', '1.1: the custom deny policy still applies');
($state, $out, $err) = run_sql('up', 'DELETE FROM public.orders;', $agent);
is($state, 'AG001', '1.1: DELETE without WHERE parked');
my ($delete_id) = $err =~ /approve_pending\((\d+)\)/;
is($delete_id, 3, '1.1: request numbering continues');
is($node->safe_psql('up', "SELECT agent_guard.approve_pending($truncate_id)",
		extra_params => [ '-U', $human ]),
	'executed', '1.1: a request parked under 1.0 is approved and executed');
is($node->safe_psql('up', 'SELECT count(*) FROM public.logs'), '0', 'the approved TRUNCATE ran');
is($node->safe_psql('up', 'SELECT agent, pending FROM agent_guard.pending_summary'),
	"$agent|2", 'pending_summary follows');
is($node->safe_psql('up', 'SELECT id, item FROM public.orders ORDER BY id'),
	"1|apple\n2|pear\n3|plum", 'orders intact');
is($node->safe_psql('up', 'SELECT intact FROM agent_guard.verify_audit()'), 't',
	'audit chain intact after new rows');

###########################################################################
# Same objects as a fresh install; 1.0 and 1.1 side by side.
###########################################################################

$node->safe_psql('fresh', q{CREATE EXTENSION agent_guard VERSION '1.1'});
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'agent_guard'}),
	'1.1', 'a fresh install is 1.1');
is($node->safe_psql('up', $members_sql), $node->safe_psql('fresh', $members_sql),
	'upgraded and fresh 1.1 have the same objects, definitions, comments and grants');

is($node->safe_psql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'agent_guard'}),
	'1.0', 'database "old" stays at 1.0');
($state, $out, $err) = run_sql('old', 'DROP TABLE public.orders;', $agent);
is($state, 'AG001', '1.0 database: DROP TABLE parked by the same library');
($state, $out, $err) = run_sql('old', q{INSERT INTO public.orders VALUES (4, 'fig');}, $agent);
is($state, '42501', '1.0 database: denied INSERT');
is($node->safe_psql('old',
		q{SELECT string_agg(decision, ',' ORDER BY seq) FROM agent_guard.audit_log
		   WHERE agent IS NOT NULL}),
	'parked,denied', '1.0 database: refusals audited');
is($node->safe_psql('old', 'SELECT intact FROM agent_guard.verify_audit()'), 't',
	'1.0 database: chain intact');

# and back out again: DROP EXTENSION of an updated extension removes it all
$node->safe_psql('up', 'DROP EXTENSION agent_guard');
# (the schema CREATE EXTENSION made is no member and stays, empty)
is($node->safe_psql('up',
		q{SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'agent_guard'::regnamespace)
		       + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'agent_guard'::regnamespace)}),
	'0', 'DROP EXTENSION after the update leaves nothing behind');

$node->stop;
done_testing();
