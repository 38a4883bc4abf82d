#!/usr/bin/env bash
# check-core.sh — the mechanical boundary between sealgate's pure core and its network
# shell (see the Makefile's header and "The pure core" in docs/architecture.md).
#
#   scripts/check-core.sh includes CC FLAGS... -- FILE.c...
#       Preprocesses each file (CC -E -H) and fails when a header it reaches, directly or
#       through project headers, is libevent's <event2/...> or OpenSSL's <openssl/...>;
#       prints the include chain that got there.
#   scripts/check-core.sh links CC LDFLAGS... -- CORE_LIB LIB...
#       Links every object of CORE_LIB into an empty program with only LIB... (the core
#       packages): fails when the core calls into the shell, libevent or OpenSSL.
set -u

usage() {
	echo "usage: $0 includes CC FLAGS... -- FILE.c... | links CC LDFLAGS... -- CORE_LIB LIB..." >&2
	exit 2
}

# chain SRC: read `CC -H` output, print "SRC -> include/a.h -> <openssl/x.h>" for every
# libevent or OpenSSL header whose includer is not one itself.
chain() {
	awk -v src="$1" '
	/^\.+ / {
		d = index($0, " ") - 1
		p = substr($0, d + 2)
		stack[d] = p
		if (p !~ /\/(event2|openssl)\//)
			next
		parent = d > 1 ? stack[d - 1] : src
		if (parent ~ /\/(event2|openssl)\//)
			next
		line = src
		for (i = 1; i < d; i++)
			line = line " -> " stack[i]
		match(p, /(event2|openssl)\/.*/)
		print line " -> <" substr(p, RSTART) ">"
	}'
}

includes() {
	status=0
	for f in "$@"; do
		if ! out=$("${cc[@]}" -E -H -o /dev/null "$f" 2>&1); then
			printf '%s\n' "$out" >&2
			echo "core boundary: cannot preprocess $f" >&2
			status=1
			continue
		fi
		bad=$(printf '%s\n' "$out" | chain "$f")
		[ -n "$bad" ] || continue
		printf '%s\n' "$bad" | sed 's/^/core boundary: /' >&2
		status=1
	done
	if [ $status -ne 0 ]; then
		echo "core boundary: core files may not include libevent or OpenSSL headers;" \
		    "move that code to a shell module or take the module out of CORE_MODS" \
		    "(Makefile)" >&2
	fi
	return $status
}

links() {
	[ $# -ge 1 ] || usage
	lib=$1
	shift
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-core.XXXXXX") || return 1
	printf 'int main(void);\nint main(void) { return 0; }\n' >"$tmp/main.c"
	if "${cc[@]}" -o "$tmp/a.out" "$tmp/main.c" -Wl,--whole-archive "$lib" -Wl,--no-whole-archive \
	    "$@" >"$tmp/err" 2>&1; then
		rm -rf "$tmp"
		return 0
	fi
	grep -o "undefined reference to [^ ]*" "$tmp/err" | sort -u | sed 's/^/  /' >&2
	grep -q "undefined reference" "$tmp/err" || cat "$tmp/err" >&2
	echo "core boundary: $lib does not link with the core packages alone: the core" \
	    "calls into the shell, libevent or OpenSSL (above)" >&2
	rm -rf "$tmp"
	return 1
}

[ $# -ge 1 ] || usage
what=$1
shift
cc=()	# the compiler command: every argument up to --
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	cc+=("$1")
	shift
done
[ $# -ge 1 ] && [ ${#cc[@]} -ge 1 ] || usage
shift
case $what in
includes) includes "$@" ;;
links) links "$@" ;;
*) usage ;;
esac
