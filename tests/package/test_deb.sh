#!/bin/bash
#
# test_deb.sh - builds the Debian package and takes it through its life on
# this machine: lintian, install with apt-get, the service's command
# started as its unit says, a credential and a sending domain added with
# relayctl (the credential local_submission names, so nothing else is
# edited: README "Installing the Debian package"), a message sent on 587
# (STARTTLS + AUTH) and delivered to a capture server, log rotation
# without losing an event, PHP's mail() as www-data and swaks on 587 as
# README shows them, a reinstall (the
# upgrade path) that keeps the queue, remove (keeps the queue), purge
# (leaves nothing behind). Run by .ci/run as root, last; see debian/ and
# README "Installing the Debian package".
#
# Where systemd is PID 1 the unit itself is started with systemctl.
# Elsewhere (a container) the unit's ExecStart is run by hand, under the
# unit's NoNewPrivileges and CapabilityBoundingSet (setpriv) and, where
# unshare is allowed, with /usr, /boot and /etc read-only
# (ProtectSystem=full) and a private /tmp.
#
# Options:
#   --fresh-users  remove the petrel user and the petrel-dkim group first
#                  (CI: deps.sh made them), so that the package creates
#                  them and purge removes them; deps.sh makes them again at
#                  the end. Never on a machine where other tests run.
#   --keep-mta     fail instead of letting apt-get replace the installed
#                  MTA (by default it is replaced, and put back at the end).
#
# Exits 0 when every check passes. Needs root, network access to nothing
# but loopback (and the apt mirror only to put a replaced MTA back).

set -euo pipefail

cd "$(dirname "$0")/../.."
exec </dev/null
export DEBIAN_FRONTEND=noninteractive

fresh_users=0
keep_mta=0
for a in "$@"; do
	case "$a" in
	--fresh-users) fresh_users=1 ;;
	--keep-mta) keep_mta=1 ;;
	-h|--help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0 ;;
	*) echo "test_deb: unknown option $a" >&2; exit 2 ;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "test_deb: must run as root (it installs the package)" >&2
	exit 1
fi

B=${B:-build}
UNIT=/lib/systemd/system/petrel.service
CONF=/etc/petrel/petrel.yaml
ACCT=/var/log/petrel/accounting.jsonl
tmp=$(mktemp -d /tmp/petrel-pkg.XXXXXX)
chmod 755 "$tmp"
master_pid=
capture_pid=
capture_starts=0
replaced_mta=
systemd=0
if [ -d /run/systemd/system ]; then
	systemd=1
fi

started=$(date +%s)
step()
{
	printf '\n== test_deb: %s (%ss)\n' "$*" "$(($(date +%s) - started))"
}

fail()
{
	echo "test_deb: FAIL: $*" >&2
	if [ -s "$tmp/master.log" ]; then
		echo "--- master's output (last 60 lines)" >&2
		tail -n 60 "$tmp/master.log" >&2
	fi
	if [ "$systemd" = 1 ]; then
		journalctl -u petrel.service -n 60 --no-pager >&2 || true
	fi
	exit 1
}

# Stops what this script started, by pid.
cleanup()
{
	if [ -n "$master_pid" ] && kill -0 "$master_pid" 2>/dev/null; then
		kill -TERM "$master_pid" 2>/dev/null || true
		wait "$master_pid" 2>/dev/null || true
	fi
	if [ -n "$capture_pid" ] && kill -0 "$capture_pid" 2>/dev/null; then
		kill -TERM "$capture_pid" 2>/dev/null || true
		wait "$capture_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# What exists on the system that has "petrel" in its name, and the petrel
# users and groups: compared before the install and after the purge.
snapshot()
{
	find /etc /var /usr /lib /run -xdev -name '*petrel*' \
	    -not -path '/var/tmp/*' 2>/dev/null | sort
	getent passwd | sed -n 's/^\(petrel[^:]*\):.*/user \1/p'
	getent group | sed -n 's/^\(petrel[^:]*\):.*/group \1/p'
}

# Waits until something answers an SMTP greeting on 127.0.0.1:$1.
wait_smtp()
{
	python3 - "$1" <<'EOF' || fail "no SMTP greeting on port $1"
import socket, sys, time
port = int(sys.argv[1])
deadline = time.time() + 30
while True:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            if s.recv(512).startswith(b"220"):
                sys.exit(0)
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit(1)
    time.sleep(0.2)
EOF
}

# Sends message $1 on 587 with STARTTLS and AUTH PLAIN.
send()
{
	python3 - "$1" <<'EOF'
import smtplib, ssl, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "app@example.com"
m["To"] = "rcpt@example.org"
m["Subject"] = "package test " + sys.argv[1]
m["Message-ID"] = "<%s@example.com>" % sys.argv[1]
m.set_content("sent through the installed package\n")
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE     # the snakeoil certificate
with smtplib.SMTP("127.0.0.1", 587, timeout=30) as s:
    s.starttls(context=ctx)
    s.login("local", "pkg-test-secret")
    s.send_message(m)
EOF
}

# Starts the capture server (the next hop) on $capture_port; each run
# numbers its files from 1, so each gets its own directory.
start_capture()
{
	capture_starts=$((capture_starts + 1))
	python3 tests/integration/capture_smtpd.py --port "$capture_port" \
	    --outdir "$tmp/captured/$capture_starts" >>"$tmp/capture.log" 2>&1 &
	capture_pid=$!
	wait_smtp "$capture_port"
}

stop_capture()
{
	kill -TERM "$capture_pid"
	wait "$capture_pid" 2>/dev/null || true
	capture_pid=
}

# Waits for $1 messages in the capture directory.
wait_captured()
{
	for _ in $(seq 1 300); do
		if [ "$(find "$tmp/captured" -name '*.eml' 2>/dev/null |
		    wc -l)" -ge "$1" ]; then
			return 0
		fi
		sleep 0.2
	done
	fail "the capture server did not get message $1"
}

# The unit's CapabilityBoundingSet in setpriv's words.
unit_caps()
{
	sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr '[:upper:]' '[:lower:]' |
	    sed 's/cap_/+/g; s/ /,/g; s/^/-all,/'
}

# Starts the service: systemctl where systemd runs, else the unit's
# ExecStart by hand, under the unit's sandboxing as far as it can.
start_service()
{
	local exec

	if [ "$systemd" = 1 ]; then
		systemctl restart petrel.service || fail "systemctl restart"
		wait_smtp 587
		return
	fi
	exec=$(sed -n 's/^ExecStart=//p' "$UNIT")
	[ -n "$exec" ] || fail "no ExecStart in $UNIT"
	grep -qx 'NoNewPrivileges=yes' "$UNIT" || fail "unit lost NoNewPrivileges"
	# shellcheck disable=SC2086	# ExecStart is a command line
	if unshare -m --propagation private true 2>/dev/null; then
		# shellcheck disable=SC2016	# expanded by the inner sh
		unshare -m --propagation private sh -c '
		    for d in /usr /boot /etc; do
			[ -d "$d" ] || continue
			mount --bind "$d" "$d" &&
			    mount -o remount,bind,ro "$d" || exit 111
		    done
		    mount -t tmpfs -o mode=1777 tmpfs /tmp || exit 111
		    exec "$@"' sh \
		    setpriv --no-new-privs --bounding-set "$(unit_caps)" \
		    $exec >>"$tmp/master.log" 2>&1 &
		echo "test_deb: master runs with /usr, /etc read-only" \
		    "and a private /tmp"
	else
		setpriv --no-new-privs --bounding-set "$(unit_caps)" \
		    $exec >>"$tmp/master.log" 2>&1 &
		echo "test_deb: unshare not allowed here: no read-only /usr"
	fi
	master_pid=$!
	wait_smtp 587
	[ "$(awk '/^NoNewPrivs:/ { print $2 }' "/proc/$master_pid/status")" \
	    = 1 ] || fail "master does not run with no_new_privs"
}

stop_service()
{
	local rc=0

	if [ "$systemd" = 1 ]; then
		systemctl stop petrel.service
		return
	fi
	kill -TERM "$master_pid"
	wait "$master_pid" || rc=$?
	master_pid=
	[ "$rc" = 0 ] || fail "master exited with status $rc on SIGTERM"
}

# A package left from before (installed, or its configuration) would hide
# what this one does: refuse rather than purge someone's installation.
if dpkg-query -W -f='${Status}\n' petrel 2>/dev/null |
    grep -qv '^unknown ok not-installed$\|^$'; then
	fail "petrel is already on this machine ($(dpkg-query -W \
	    -f='${Status}' petrel)); apt-get purge petrel first"
fi

step "build"
make B="$B" deb
deb=$(ls "$B"/deb/petrel_*.deb)
changes=$(ls "$B"/deb/petrel_*.changes)

step "lintian"
# Errors fail the run; warnings are listed (README explains them).
lintian --fail-on error --info "$changes" || fail "lintian reports errors"

step "contents"
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$tmp/contents"
for f in /usr/libexec/petrel/master /usr/libexec/petrel/smtpd \
    /usr/libexec/petrel/qmgr /usr/libexec/petrel/smtp \
    /usr/libexec/petrel/bounce /usr/libexec/petrel/webhookd \
    /usr/sbin/relayctl /usr/sbin/relayq /etc/petrel/petrel.yaml \
    /etc/petrel/bounce-classes.yaml /etc/logrotate.d/petrel \
    "$UNIT" /usr/share/man/man8/master.8.gz \
    /usr/share/man/man5/petrel.yaml.5.gz; do
	grep -qx "$f" "$tmp/contents" || fail "$f is not in the package"
done
dpkg-deb -f "$deb" Provides Conflicts Replaces >"$tmp/fields"
for field in Provides Conflicts Replaces; do
	grep -qx "$field: mail-transport-agent" "$tmp/fields" ||
	    fail "$field is not mail-transport-agent"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles >"$tmp/conffiles"
for f in "$CONF" /etc/petrel/bounce-classes.yaml /etc/logrotate.d/petrel; do
	grep -qx "$f" "$tmp/conffiles" || fail "$f is not a conffile"
done

step "install"
snapshot >"$tmp/before"
for p in $(dpkg-query -W -f='${Package} ${Status} ${Provides}\n' 2>/dev/null |
    awk '/ installed/ && /mail-transport-agent/ { print $1 }'); do
	[ "$p" = petrel ] && continue
	[ "$keep_mta" = 0 ] || fail "$p would be replaced (--keep-mta)"
	replaced_mta="$replaced_mta $p"
done
[ -z "$replaced_mta" ] ||
    echo "test_deb: the package replaces$replaced_mta (put back at the end)"
if [ "$fresh_users" = 1 ]; then
	if pgrep -u petrel >/dev/null 2>&1; then
		fail "--fresh-users: processes run as petrel"
	fi
	! getent passwd petrel >/dev/null || userdel petrel
	! getent group petrel >/dev/null || groupdel petrel
	! getent group petrel-dkim >/dev/null || groupdel petrel-dkim
	snapshot >"$tmp/before"
fi
apt-get install -y -q "./$deb" || fail "apt-get install"
dpkg-query -W -f='${Status}\n' petrel | grep -qx 'install ok installed' ||
    fail "petrel is not installed"
getent passwd petrel >/dev/null || fail "no petrel user"
getent group petrel-dkim >/dev/null || fail "no petrel-dkim group"
[ "$(stat -c %U:%a /var/spool/petrel/cred)" = petrel:700 ] ||
    fail "/var/spool/petrel/cred: $(stat -c %U:%a /var/spool/petrel/cred)"
[ -d /var/log/petrel ] || fail "no /var/log/petrel"
grep -q '^  private_key: /etc/ssl/private/ssl-cert-snakeoil.key$' "$CONF" ||
    fail "$CONF does not use the snakeoil key"
# The sendmail-compatible commands, once the tree builds them.
for c in sendmail mailq newaliases; do
	if grep -qx "/usr/sbin/$c" "$tmp/contents"; then
		[ -x "/usr/sbin/$c" ] || fail "/usr/sbin/$c not installed"
	fi
done

step "configure: a transport to the capture server, logs on stderr"
capture_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$systemd" = 1 ]; then
	systemctl is-enabled -q petrel.service || fail "unit not enabled"
	systemctl stop petrel.service
fi
printf '\n# test_deb.sh\ntransport:\n  "*": "[127.0.0.1]:%s"\n' \
    "$capture_port" >>"$CONF"
sed -i 's/^  destination: syslog$/  destination: stderr/' "$CONF"
start_capture

step "start the service"
start_service

step "relayctl: a credential and a sending domain"
# "local": the credential the package's local_submission names.
grep -q '^local_submission:$' "$CONF" ||
    fail "$CONF does not turn local_submission on"
echo pkg-test-secret | relayctl user add local --domains example.com \
    --password-stdin || fail "relayctl user add"
relayctl domain add example.com >"$tmp/domain.txt" ||
    fail "relayctl domain add"
[ "$(stat -c %G /etc/petrel/dkim)" = petrel-dkim ] ||
    fail "DKIM keys not in group petrel-dkim"

step "send on 587 (STARTTLS, AUTH) and deliver"
send m1 || fail "submission on 587"
wait_captured 1
python3 - "$tmp"/captured/1/*.eml <<'EOF' ||
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
sig = " ".join(str(m.get("DKIM-Signature", "")).split())
sys.exit(0 if "d=example.com;" in sig else 1)
EOF
    fail "the delivered message is not DKIM-signed for example.com"
for _ in $(seq 1 100); do
	grep -q '"event":"delivered"' "$ACCT" 2>/dev/null && break
	sleep 0.2
done
grep -q '"event":"accepted"' "$ACCT" || fail "no accepted event in $ACCT"
grep -q '"event":"delivered"' "$ACCT" || fail "no delivered event in $ACCT"

step "logrotate: the next events go to the new file"
logrotate -s "$tmp/logrotate.state" -f /etc/logrotate.d/petrel ||
    fail "logrotate"
[ -f "$ACCT.1" ] || fail "logrotate did not rotate $ACCT"
for _ in $(seq 1 50); do
	grep -q 'reopening the accounting log' "$tmp/master.log" 2>/dev/null &&
	    break
	[ "$systemd" = 1 ] && sleep 1 && break
	sleep 0.1
done
sleep 0.5
send m2 || fail "submission on 587 after rotation"
wait_captured 2
for _ in $(seq 1 100); do
	grep -q '"event":"delivered"' "$ACCT" 2>/dev/null && break
	sleep 0.2
done
grep -q '"event":"accepted"' "$ACCT" ||
    fail "after rotation, smtpd still writes to the old file"
grep -q '"event":"delivered"' "$ACCT" ||
    fail "after rotation, qmgr still writes to the old file"
[ "$(grep -c '"event":"accepted"' "$ACCT.1")" = 1 ] ||
    fail "$ACCT.1 has other than the first message's events"
[ "$(stat -c %U "$ACCT")" = petrel ] || fail "$ACCT not owned by petrel"

# README's walk-through: PHP's mail() (php-cli's default sendmail_path,
# /usr/sbin/sendmail -t -i) as www-data, which local_submission maps to
# the credential, and swaks on 587 with that credential's secret.
if command -v php >/dev/null; then
	step "PHP mail() as www-data through /usr/sbin/sendmail"
	(cd / && setpriv --reuid=www-data --regid=www-data --clear-groups \
	    php -r 'exit(mail("rcpt@example.org",
	    "package test php", "Hello from PHP.",
	    "From: Web App <app@example.com>") ? 0 : 3);') ||
	    fail "PHP mail() as www-data"
	wait_captured 3
	f=$(grep -l '^Subject: package test php' "$tmp"/captured/*/*.eml) ||
	    fail "PHP's message was not delivered"
	python3 - "$f" <<'EOF' || fail "PHP's message is not DKIM-signed"
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
sig = " ".join(str(m.get("DKIM-Signature", "")).split())
sys.exit(0 if "d=example.com;" in sig else 1)
EOF
else
	echo "test_deb: php not installed: PHP mail() not tried"
	send m-php || fail "submission on 587 (in PHP's place)"
	wait_captured 3
fi
if command -v swaks >/dev/null; then
	step "swaks on 587 (STARTTLS, AUTH PLAIN) as README shows it"
	swaks --server 127.0.0.1:587 -tls --auth PLAIN --auth-user local \
	    --auth-password pkg-test-secret --from app@example.com \
	    --to rcpt@example.org --header 'Subject: package test swaks' \
	    >"$tmp/swaks.log" 2>&1 || { cat "$tmp/swaks.log" >&2;
	    fail "swaks on 587"; }
else
	echo "test_deb: swaks not installed: sent with Python instead"
	send m-swaks || fail "submission on 587 (in swaks' place)"
fi
wait_captured 4

step "upgrade path: reinstall with a message in the queue"
stop_capture
send m3 || fail "submission on 587 before the reinstall"
for _ in $(seq 1 100); do
	[ "$(relayq -j | grep -c '"queue_id"')" -ge 1 ] && break
	sleep 0.2
done
relayq -j | grep -q '"queue_id"' || fail "m3 is not in the queue"
if [ "$systemd" = 1 ]; then
	# The package's scripts restart the running service.
	old=$(systemctl show -P MainPID petrel.service)
	apt-get install -y -q --reinstall "./$deb" ||
	    fail "apt-get reinstall"
	systemctl is-active -q petrel.service ||
	    fail "not running after the reinstall"
	[ "$(systemctl show -P MainPID petrel.service)" != "$old" ] ||
	    fail "the reinstall did not restart the service"
	wait_smtp 587
else
	# No init system to restart it: stop, reinstall, start by hand.
	stop_service
	apt-get install -y -q --reinstall "./$deb" ||
	    fail "apt-get reinstall"
	start_service
fi
grep -q "^  \"\\*\": \"\\[127.0.0.1\\]:$capture_port\"" "$CONF" ||
    fail "the reinstall did not keep the edited $CONF"
start_capture
relayq -f >/dev/null || fail "relayq -f"
wait_captured 5
send m4 || fail "the credential did not survive the reinstall"
wait_captured 6
stop_service
stop_capture

step "remove: the queue, credentials and configuration stay"
apt-get remove -y -q petrel || fail "apt-get remove"
dpkg-query -W -f='${Status}\n' petrel | grep -qx 'deinstall ok config-files' ||
    fail "petrel is not in config-files state"
[ -d /var/spool/petrel/cred ] || fail "remove deleted the queue directory"
[ -d /var/spool/petrel/db ] || fail "remove deleted the queue database"
[ -f "$CONF" ] || fail "remove deleted $CONF"
[ ! -e /usr/libexec/petrel/master ] || fail "remove left master"

step "purge: nothing left behind"
apt-get purge -y -q petrel || fail "apt-get purge"
if dpkg-query -W -f='${Status}\n' petrel 2>/dev/null | grep -q installed
then
	fail "petrel is still known to dpkg"
fi
snapshot >"$tmp/after"
if ! diff -u "$tmp/before" "$tmp/after"; then
	fail "purge left the above behind (+) or removed it (-)"
fi

if [ -n "$replaced_mta" ]; then
	step "put back$replaced_mta"
	# shellcheck disable=SC2086	# one argument per package
	apt-get install -y -q --no-install-recommends $replaced_mta ||
	    echo "test_deb: could not reinstall$replaced_mta" >&2
fi
if [ "$fresh_users" = 1 ]; then
	sh tests/deps.sh
fi

echo
echo "test_deb: all package checks passed"
