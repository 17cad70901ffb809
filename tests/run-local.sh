#!/bin/sh
#
# run-local.sh - runs Petrel locally from the build tree (`make run`).
#
# Creates run/ under the tree on first use: two self-signed certificates
# (ECDSA P-256 and RSA-2048, served side by side: each client gets the one
# it can verify), a configuration and a queue directory, and a demo
# credential printed once. A run/ made before the ECDSA certificate
# existed gets it, but keeps its configuration (remove run/petrel.yaml).
# Listens on 127.0.0.1 only: ports 587, 465 and 2525 as root, else 10587,
# 10465 and 12525. Without a transport entry, mail goes to each
# recipient's MX. Bounces are classified with the tree's
# etc/bounce-classes.yaml (bounce.classes). Stays in the foreground;
# Ctrl-C stops it.

set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/run"
conf="$run/petrel.yaml"

if [ "$(id -u)" -eq 0 ]; then
	owner=petrel
	p_sub=587 p_smtps=465 p_alt=2525
	if ! id "$owner" >/dev/null 2>&1; then
		echo "run-local: user $owner is missing; run 'make deps' as root" >&2
		exit 1
	fi
else
	owner=$(id -un)
	p_sub=10587 p_smtps=10465 p_alt=12525
fi

daemons="$top/build"
classes="$top/etc/bounce-classes.yaml"
# The daemons run as $owner: when the tree is not reachable for it (a
# clone under /root, say), run from a copy in /var/tmp instead.
if [ "$(id -u)" -eq 0 ] && ! su -s /bin/sh "$owner" -c \
    "test -x '$top/build/smtpd' && test -r '$top/Makefile'" 2>/dev/null; then
	run=/var/tmp/petrel-run
	conf="$run/petrel.yaml"
	daemons="$run/bin"
	classes="$run/bounce-classes.yaml"
	mkdir -p "$daemons"
	cp "$top"/build/master "$top"/build/smtpd "$top"/build/qmgr \
	    "$top"/build/smtp "$daemons/"
	cp "$top/etc/bounce-classes.yaml" "$run/"
	chmod 755 /var/tmp "$run" "$daemons"
	echo "run-local: $top is not readable by $owner; running from $run"
fi

mkdir -p "$run/tls"
chmod 755 "$run"
if [ ! -f "$run/tls/privkey.pem" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 \
	    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
	    -keyout "$run/tls/privkey.pem" -out "$run/tls/fullchain.pem" \
	    2>/dev/null
	chmod 600 "$run/tls/privkey.pem"
fi
if [ ! -f "$run/tls/ecdsa-privkey.pem" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -days 365 \
	    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
	    -keyout "$run/tls/ecdsa-privkey.pem" \
	    -out "$run/tls/ecdsa-fullchain.pem" 2>/dev/null
	chmod 600 "$run/tls/ecdsa-privkey.pem"
fi

if [ ! -f "$conf" ]; then
	cat >"$conf" <<EOF2
# Petrel configuration for a local run (made by tests/run-local.sh).
# See man/petrel.yaml.5 for every key.
mail_owner: $owner
queue_directory: $run/queue
daemon_directory: $daemons
myhostname: localhost
listeners:
  - { name: submission, address: "127.0.0.1:$p_sub", tls: starttls }
  - { name: smtps, address: "127.0.0.1:$p_smtps", tls: implicit }
  - { name: alt, address: "127.0.0.1:$p_alt", tls: starttls }
tls:
  certificate: [ $run/tls/ecdsa-fullchain.pem, $run/tls/fullchain.pem ]
  private_key: [ $run/tls/ecdsa-privkey.pem, $run/tls/privkey.pem ]
queue: { min_backoff: 5m, max_backoff: 1h, max_lifetime: 5d }
# A demo relays for any sender domain; in production register each one
# with "relayctl domain add" and remove this line.
smtpd: { require_verified_domains: false }
dkim: { key_directory: $run/dkim }
log: { destination: stderr, accounting: $run/accounting.jsonl }
bounce: { classes: $classes }
EOF2
fi

# master creates the rest of the queue tree; relayctl needs its top now.
mkdir -p "$run/queue"
chown "$owner" "$run/queue"

# A demo credential, created (and its secret shown) once.
if ! "$top/build/relayctl" -c "$conf" user list 2>/dev/null |
    grep -q '^demo[[:space:]]'; then
	secret=$("$top/build/relayctl" -c "$conf" user add demo)
	echo "Demo credential: user demo, password $secret"
	echo "$secret" >"$run/demo-secret"
	chmod 600 "$run/demo-secret"
else
	echo "Demo credential: user demo, password in $run/demo-secret"
fi

cat <<EOF2
Petrel listens on 127.0.0.1: $p_sub (STARTTLS), $p_smtps (TLS), $p_alt (STARTTLS).
Try: swaks --server 127.0.0.1:$p_sub -tls --auth PLAIN --auth-user demo \\
       --auth-password "\$(cat $run/demo-secret)" --to you@example.com
Queue: $top/build/relayq -c $conf      Stop: Ctrl-C
EOF2
exec "$daemons/master" -c "$conf" -f
