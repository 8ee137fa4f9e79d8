# folded.sh - reading folded stacks ("frame;frame;... COUNT" lines), for tests (sourced, POSIX sh).
#
# Shared by the end-to-end tests (tests/e2e/lib.sh) and the kernel-matrix
# guest tests (tests/kernels/guest/lib.sh), which run under busybox: awk,
# sed and grep only, nothing bash-specific.

# share FILE PATTERN: percentage (integer) of samples in folded FILE whose stack matches PATTERN
share() {
	awk -v pat="$2" '{ n = $NF; total += n; line = $0; sub(/ [0-9]+$/, "", line);
		if (index(line, pat)) hit += n }
		END { if (total == 0) print 0; else printf "%d\n", hit * 100 / total }' "$1"
}

total_samples() { awk '{ t += $NF } END { print t + 0 }' "$1"; }

# rooted_permille FILE: samples (per mille) whose outermost frame is the process or a thread root
rooted_permille() {
	awk '{ n = $NF; total += n; split($1, f, ";");
		if (f[1] ~ /^(_start|__libc_start_main|start_thread|clone3?|__clone3?)$/) ok += n }
		END { if (total == 0) print 0; else printf "%d\n", ok * 1000 / total }' "$1"
}

# deep_samples FILE N: samples under _start whose stack holds >= N zoo_recurse_[ab] frames
deep_samples() {
	awk -v want="$2" '{ c = gsub(/zoo_recurse_[ab]/, "&"); if ($0 ~ /^_start;/ && c >= want) n += $NF }
		END { print n + 0 }' "$1"
}

# kernel_share FILE PATTERN: "K P": samples with kernel frames (_[k]) and the
# percentage (integer) of those whose stack also matches PATTERN
kernel_share() {
	awk -v pat="$2" '{ n = $NF; if (index($0, "_[k]")) { k += n; if (index($0, pat)) hit += n } }
		END { printf "%d %d\n", k, k ? hit * 100 / k : 0 }' "$1"
}
