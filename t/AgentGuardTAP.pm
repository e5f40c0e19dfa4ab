
# Copyright (c) agent_guard authors

# Helpers shared by agent_guard's TAP tests.

package AgentGuardTAP;

use strict;
use warnings;

use Exporter 'import';
our @EXPORT_OK = qw(run_sql);

# Run $sql in one psql session on $node, database $db, as $user (the
# bootstrap superuser when undef), with @psql_options added to psql's
# command line.  Returns (sqlstate, stdout, stderr): the SQLSTATE of the
# last statement that failed, 00000 when none did.
sub run_sql
{
	my ($node, $db, $sql, $user, @psql_options) = @_;
	my @params = ((defined $user ? ('-U', $user) : ()), @psql_options);
	my ($ret, $stdout, $stderr) = $node->psql(
		$db, "$sql\n\\echo SQLSTATE=:LAST_ERROR_SQLSTATE",
		on_error_stop => 0,
		extra_params => \@params);
	my $sqlstate =
	  defined $stdout && $stdout =~ s/\n?SQLSTATE=(\w+)\n?\z//s ? $1 : '?';
	return ($sqlstate, $stdout, $stderr);
}

1;
