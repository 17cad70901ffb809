#!/bin/sh
#
# deps.sh - installs the Debian packages Petrel's build and tests need.
#
# Run by `make deps` (and so by `make check` and `make run`). When every
# package is installed it prints nothing and exits 0, quickly. Otherwise,
# as root it runs apt-get update once and installs what is missing; as an
# ordinary user it prints the apt-get command to run and exits 1. As root
# it also creates the system user `petrel`, the mail_owner the integration
# tests run the daemons as when started as root. `deps.sh --list` prints
# the full package list (used by .ci/run) and does nothing else.

set -u

# Build: compiler and make, pkg-config, OpenSSL, LMDB, libyaml, Check,
# libopendkim (DKIM signing in smtp).
# Tests: the openssl CLI (certificates), python3 (the integration driver
# and the capturing SMTP server), swaks and curl (SMTP clients; swaks
# needs libnet-ssleay-perl, only a Recommends, for STARTTLS and TLS).
# Fuzzing (`make fuzz`): clang, its libFuzzer and sanitizer runtimes
# (libclang-rt-dev, only a Recommends) and llvm for llvm-symbolizer.
# nodejs and npm: the nodemailer test installs nodemailer from npm.
# python3-dkim: dkimpy, the independent verifier of the DKIM tests (run
# by /usr/bin/python3, the interpreter Debian's package is built for).
# libspf2-dev: SPF evaluation in `relayctl domain check`; dnsmasq-base:
# the real DNS server on loopback of the DNS check tests.
# libidn2-dev: internationalised domain names (IDNA2008) in smtpd, smtp
# and relayctl, so SMTPUTF8 addresses compare with A-label domains.
# libmime-tools-perl: MIME::Parser, the second, independent parser of the
# delivery reports bounce(8) makes (test_bounce_parse, test_bounce_daemon).
# pflogsumm: Postfix's log summariser, run on Petrel's log by
# test_pflogsumm to show that Postfix's log tools read it (issue 15).
# libjansson-dev: jansson parses the JSON of X-Mailgun-Variables and
# X-SMTPAPI headers in smtpd (lib/metahdr.c), never a parser of our own.
# libcurl4-openssl-dev: webhookd's HTTP(S) client (libcurl multi).
# lmdb-utils: mdb_dump, with which test_webhookd reads webhookd's store.
# libmicrohttpd-dev: metricsd's HTTP server (the Prometheus endpoint);
# python3-prometheus-client: its text parser checks the exposition in
# test_metrics (Debian's prometheus package, for promtool, is ~100 MB).
PKGS="pkg-config libssl-dev liblmdb-dev libyaml-dev check openssl python3
swaks libnet-ssleay-perl curl clang libclang-rt-dev llvm libopendkim-dev
python3-dkim libspf2-dev dnsmasq-base libmime-tools-perl libidn2-dev
pflogsumm libjansson-dev libcurl4-openssl-dev libmicrohttpd-dev
python3-prometheus-client
python3-django-anymail python3-cryptography
libgmime-3.0-dev php-cli s-nail
dpkg-dev debhelper fakeroot lintian ssl-cert adduser logrotate procps
util-linux lmdb-utils strace"
# libgmime-3.0-dev: sendmail(1) parses address lists (-t) with GMime.
# php-cli, s-nail: the real local clients test_sendmail runs (PHP's
# mail(), mailx) against build/sendmail. s-nail rather than bsd-mailx,
# which depends on an MTA (exim4 would come with it).
# The Debian package (make deb, tests/package/test_deb.sh): dpkg-dev and
# debhelper build it (fakeroot where a tool asks for it), lintian checks
# it; ssl-cert (the snakeoil certificate its configuration uses), adduser
# (its postinst), logrotate and procps (pkill, the rotation's signal) are
# what it depends on or recommends, installed beforehand so the test needs
# nothing from the mirror; util-linux has setpriv and unshare.
# python3-django-anymail (with python3-django) and python3-cryptography:
# django-anymail's own Mailgun, SendGrid and Postmark webhook views, the
# real consumer the webhook format tests post to (anymail_receiver.py,
# run by /usr/bin/python3), and SendGrid's ECDSA signature check.
# strace: test_commit slows every fsync of smtpd with its fault injection
# (--inject=fsync:delay_enter), to show the event loop serves other
# sessions while a commit is on disk.
# Node from another source (e.g. NodeSource's nodejs, which bundles npm and
# conflicts with Debian's npm) is used as it is.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1
then
	PKGS="$PKGS nodejs npm"
fi
MAIL_OWNER=petrel
DKIM_GROUP=petrel-dkim

if [ "${1-}" = "--list" ]; then
	# shellcheck disable=SC2086	# one package per word
	echo build-essential $PKGS
	exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: not a Debian system; install by hand: a C compiler," \
	    "make, pkg-config, OpenSSL, LMDB, libyaml, Check, libopendkim" \
	    "and libspf2 headers," \
	    "openssl, python3, swaks, curl; clang with libFuzzer for" \
	    "make fuzz" >&2
	exit 0
fi

# Prints the packages of $* that are not fully installed.
missing_pkgs()
{
	dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
	    awk -v want="$*" '
	    $2 == "install" && $3 == "ok" && $4 == "installed" { ok[$1] = 1 }
	    END {
		n = split(want, w, /[ \t\n]+/)
		for (i = 1; i <= n; i++)
			if (w[i] != "" && !(w[i] in ok))
				printf "%s ", w[i]
	    }'
}

# shellcheck disable=SC2086	# one argument per package
missing=$(missing_pkgs $PKGS)
# build-essential, or at least a compiler and make.
if [ -n "$(missing_pkgs build-essential)" ] &&
    [ -n "$(missing_pkgs gcc make libc6-dev)" ]; then
	missing="build-essential $missing"
fi
missing=$(echo "$missing" | sed 's/  */ /g; s/^ //; s/ $//')

uid=$(id -u)

if [ -n "$missing" ]; then
	if [ "$uid" -ne 0 ]; then
		echo "deps.sh: missing Debian packages: $missing" >&2
		echo "deps.sh: run as root: apt-get update &&" \
		    "DEBIAN_FRONTEND=noninteractive apt-get install -y" \
		    "--no-install-recommends $missing" >&2
		exit 1
	fi
	echo "deps.sh: installing $missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update || exit 1
	# shellcheck disable=SC2086	# one argument per package
	apt-get install -y --no-install-recommends $missing </dev/null ||
	    exit 1
fi

if [ "$uid" -eq 0 ] && ! getent passwd "$MAIL_OWNER" >/dev/null 2>&1; then
	if getent group "$MAIL_OWNER" >/dev/null 2>&1; then
		grp="-g $MAIL_OWNER"
	else
		grp="-U"
	fi
	# shellcheck disable=SC2086	# $grp is one or two words
	useradd --system $grp --home-dir /nonexistent --no-create-home \
	    --shell /usr/sbin/nologin "$MAIL_OWNER" || exit 1
	echo "deps.sh: created system user $MAIL_OWNER"
fi

# The group through which smtp alone reads DKIM keys (dkim.group).
if [ "$uid" -eq 0 ] && ! getent group "$DKIM_GROUP" >/dev/null 2>&1; then
	groupadd --system "$DKIM_GROUP" || exit 1
	echo "deps.sh: created system group $DKIM_GROUP"
fi

exit 0
