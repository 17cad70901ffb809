#!/bin/sh
#
# lint.sh - house-style checks run by `make lint` from the top of the tree.
#
# Fails (exit 1), naming file:line, when C code calls a banned function,
# when a .c or .h file does not open with a /* header comment, when a
# header lacks its PETREL_<NAME>_H include guard, or when a generic module
# of lib/ includes a mail module's header (STYLE.md section 3: the generic
# modules sit below the mail ones, as Postfix's util below global). Also
# runs shellcheck on the shell scripts when shellcheck is installed. See
# STYLE.md section 8.

set -u

DIRS="lib master smtpd qmgr smtp bounce webhookd relayctl relayq tests/unit tests/fuzz"
BANNED="strcpy strcat sprintf vsprintf gets strtok strncpy strncat atoi atol
system popen rand"
# The generic modules of lib/: they know nothing of mail and include only
# each other's headers (and system ones). Every other lib/ module is a mail
# module (queue ids, queue store, configuration, protocol, credentials,
# DKIM keys, the daemon skeleton, and modules that take a struct cfg such
# as mdbdir, privsep and dnsres), so one added later is covered without an
# edit here; a new generic module is added to this list on purpose.
GENERIC="vbuf xalloc log event attr attrconn parse json cidr b64"

if [ ! -f Makefile ] || [ ! -d lib ]; then
	echo "lint.sh: run from the top of the Petrel tree" >&2
	exit 2
fi

tmp=$(mktemp) || exit 2
trap 'rm -f "$tmp" "$tmp.files"' EXIT
trap 'exit 2' HUP INT TERM

existing=
for d in $DIRS; do
	[ -d "$d" ] && existing="$existing $d"
done
# shellcheck disable=SC2086	# word splitting of the directory list
find $existing -type f \( -name '*.c' -o -name '*.h' \) | sort >"$tmp.files"

status=0

if [ -s "$tmp.files" ]; then
	# Banned calls: comments, string and character literals are blanked
	# first (keeping line numbers), so only code is matched. A call is the
	# name, not preceded by an identifier character or member access,
	# followed by "(": snprintf and vsnprintf do not match.
	# shellcheck disable=SC2046	# one argument per file name
	awk -v banned="$BANNED" '
	BEGIN {
		nb = split(banned, names, /[ \t\n]+/)
	}
	FNR == 1 {
		incomment = 0
	}
	{
		line = $0
		out = ""
		n = length(line)
		i = 1
		while (i <= n) {
			c = substr(line, i, 1)
			c2 = substr(line, i, 2)
			if (incomment) {
				if (c2 == "*/") {
					incomment = 0
					out = out "  "
					i += 2
				} else {
					out = out " "
					i++
				}
				continue
			}
			if (c2 == "/*") {
				incomment = 1
				out = out "  "
				i += 2
				continue
			}
			if (c2 == "//")
				break
			if (c == "\"" || c == "\047") {
				q = c
				out = out q
				i++
				while (i <= n) {
					c = substr(line, i, 1)
					if (c == "\\") {
						i += 2
						continue
					}
					if (c == q)
						break
					i++
				}
				out = out q
				i++
				continue
			}
			out = out c
			i++
		}
		for (k = 1; k <= nb; k++) {
			if (names[k] == "")
				continue
			re = "(^|[^A-Za-z0-9_.>])" names[k] "[ \t]*\\("
			if (out ~ re)
				printf "%s:%d: banned function %s()\n",
				    FILENAME, FNR, names[k]
		}
	}' $(cat "$tmp.files") >"$tmp"
	if [ -s "$tmp" ]; then
		cat "$tmp"
		status=1
	fi

	while IFS= read -r f; do
		first=$(head -n 1 "$f")
		case $first in
		/\**)
			;;
		*)
			echo "$f:1: missing leading /* header comment */"
			status=1
			;;
		esac
		case $f in
		*.h)
			name=$(basename "$f" .h | tr '[:lower:]' '[:upper:]' |
			    sed 's/[^A-Z0-9]/_/g')
			guard="PETREL_${name}_H"
			# The #ifndef must be directly followed by its #define.
			if ! awk -v g="$guard" '
			    $1 == "#ifndef" && $2 == g { want = NR + 1 }
			    NR == want && $1 == "#define" && $2 == g { ok = 1 }
			    END { exit !ok }' "$f"; then
				echo "$f:1: missing include guard $guard"
				status=1
			fi
			;;
		esac
	done <"$tmp.files"
fi

# Layering: a quoted #include in a generic module must name a generic
# module's header. Comments are not stripped: an #include line is code.
for m in $GENERIC; do
	for f in "lib/$m.c" "lib/$m.h"; do
		[ -f "$f" ] || continue
		awk -v generic=" $GENERIC " -v mod="$m" '
		/^[ \t]*#[ \t]*include[ \t]*"/ {
			h = $0
			sub(/^[^"]*"/, "", h)
			sub(/".*$/, "", h)
			name = h
			sub(/\.h$/, "", name)
			if (name == h || index(name, "/") != 0 ||
			    index(generic, " " name " ") == 0)
				printf "%s:%d: generic module %s includes " \
				    "mail module header \"%s\"\n", FILENAME,
				    FNR, mod, h
		}' "$f" >"$tmp"
		if [ -s "$tmp" ]; then
			cat "$tmp"
			status=1
		fi
	done
done

if command -v shellcheck >/dev/null 2>&1; then
	scripts=
	for f in tests/*.sh tests/integration/*.sh bench/*.sh .ci/run; do
		[ -f "$f" ] && scripts="$scripts $f"
	done
	if [ -n "$scripts" ]; then
		# shellcheck disable=SC2086	# one argument per script
		if ! shellcheck -f gcc $scripts; then
			status=1
		fi
	fi
else
	echo "lint.sh: shellcheck not installed; shell scripts not checked" >&2
fi

exit $status
