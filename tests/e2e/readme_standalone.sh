#!/bin/sh
# readme_standalone: the README stands alone (issue [13] #15): it never
# points outside the repository (../shared/...), and every relative link
# and every `docs/...` path it names exists in the repository.
. "$(dirname "$0")/lib.sh"
[ -f README.md ] || fail "README.md missing (run from the repository root)"
grep -n '\.\./' README.md > "$OUT/outside" && fail "README points outside the repository: $(cat "$OUT/outside")"
missing=""
for p in $(grep -o '](\([^)#:]*\))' README.md | sed 's/^](//; s/)$//') \
	$(grep -o '`docs/[A-Za-z0-9_./-]*`' README.md | tr -d '`'); do
	[ -e "$p" ] || missing="$missing $p"
done
[ -z "$missing" ] || fail "README names files that do not exist:$missing"
exit 0
