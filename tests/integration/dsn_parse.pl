#!/usr/bin/perl
# dsn_parse.pl - the second, independent parser of Petrel's delivery
# reports (bounce(8)), for test_bounce_parse.py and test_bounce_daemon.py.
#
# Parses one message (a file, or standard input) with MIME-tools'
# MIME::Parser (Debian: libmime-tools-perl) and prints one JSON object:
# the top-level type and report-type, each part's type and transfer
# encoding, the message/delivery-status part's per-message fields and
# per-recipient blocks (names lower-cased, folded lines unfolded), the
# Subject of the attached original and the text of the first part. The
# Python side builds the same object with the email package and compares.
use strict;
use warnings;
use JSON::PP;
use MIME::Parser;

my $parser = MIME::Parser->new;
$parser->output_to_core(1);
$parser->tmp_to_core(1);
# Parts stay as bytes: message/* bodies are read here, not by MIME-tools.
$parser->extract_nested_messages(0);
$parser->decode_bodies(1);

local $/;
my $data;
if (@ARGV) {
	open(my $fh, '<:raw', $ARGV[0]) or die "open $ARGV[0]: $!\n";
	$data = <$fh>;
	close($fh);
} else {
	binmode(STDIN);
	$data = <STDIN>;
}
my $top = $parser->parse_data($data);

sub fields {
	my ($block) = @_;
	my %f;
	$block =~ s/\r\n/\n/g;
	$block =~ s/\n(?=[ \t])//g;		# unfold (RFC 5322 2.2.3)
	for my $line (split(/\n/, $block)) {
		next if $line eq '';
		my ($name, $value) = $line =~ /^([^:\s]+):\s*(.*)$/
		    or die "bad field line: $line\n";
		$value =~ s/\s+/ /g;
		$value =~ s/\s+$//;
		$f{lc($name)} = $value;
	}
	return \%f;
}

my %out;
$out{content_type} = $top->head->mime_type;
my $ct = $top->head->get('Content-Type') // '';
($out{report_type}) = $ct =~ /report-type\s*=\s*"?([\w-]+)/i;
$out{parts} = [];
$out{encodings} = [];
for my $part ($top->parts) {
	my $type = $part->head->mime_type;
	push(@{$out{parts}}, $type);
	push(@{$out{encodings}}, lc($part->head->mime_encoding));
	my $body = $part->bodyhandle ? $part->bodyhandle->as_string : '';
	if ($type eq 'text/plain' && !exists($out{text})) {
		$out{text} = $body;
	} elsif ($type eq 'message/delivery-status') {
		my @blocks = grep { /\S/ } split(/\r?\n(?:[ \t]*\r?\n)+/, $body);
		$out{per_message} = fields(shift(@blocks));
		$out{recipients} = [map { fields($_) } @blocks];
	} elsif ($type eq 'text/rfc822-headers' ||
	    $type eq 'message/rfc822') {
		my ($hdrs) = split(/\r?\n\r?\n/, $body, 2);
		$out{attached_subject} = fields($hdrs)->{subject};
		$out{attached_full} = $type eq 'message/rfc822' ? 1 : 0;
	}
}
print JSON::PP->new->canonical->encode(\%out), "\n";
