#!/bin/sh
# run.sh [CASE...] - the kernel matrix: boot each kernel in qemu (TCG) and run the guest tests.
#
# Cases come from tests/kernels/cases.conf (default: all of them).  For
# each: fetch or build the kernel (cached in build/kernels/), work out the
# features its config promises (the oracle the guest's features test
# checks ember against), make sure the BTF archive has the kernel when the
# guest will not see /sys/kernel/btf (the entry built into ember, else one
# made now from the kernel's own BTF and passed as --btf-archive), boot it
# with the common initramfs (tests/kernels/initramfs.sh) plus the case's
# own, and read the results from the second serial port.
#
# Prints one table row per case and a markdown table at the end.  Exits 0
# when every case that ran passed, 1 when one failed, 77 when none could
# run (the reasons are printed as "SKIPPED: ...").
#
#   QEMU_TIMEOUT=900  seconds per boot      QEMU_SMP=2, QEMU_MEM=1024
#   SCALE=1           workload duration multiplier inside the guest
#   GUEST_TESTS="20-record_cpp ..."  run only these guest tests (default: all)
#   GUEST_ENV="X=1"   more lines for the guest's /case.env (debugging)
#   BUILD_KERNELS=1   build the no-BTF kernel when it is not cached
#                     (0: skip that case; `make test` sets 0)
set -u
cd "$(dirname "$0")/../.."
conf=tests/kernels/cases.conf
kout=${KERNELS_OUT:-build/kernels}
work=${TEST_OUT:-build/test-output}/kernels
tmo=${QEMU_TIMEOUT:-900}
tab=$(printf '\t')
mkdir -p "$kout" "$work"
kout=$(cd "$kout" && pwd)

say() { echo "kernels: $*"; }

# ---- kernels ------------------------------------------------------------------

# resolve_debian "PKG=VER|META": sets pkg, ver (the pinned one while Debian has it)
resolve_debian() {
	pinned=${1%%|*} meta=${1#*|}
	pkg=${pinned%%=*} ver=${pinned#*=}
	apt-cache show "$pkg=$ver" > /dev/null 2>&1 && return 0
	if [ -z "${apt_updated:-}" ] && [ "$(id -u)" -eq 0 ]; then
		apt_updated=1 # the package lists may be missing or old: once per run
		say "$pkg=$ver not in the package lists; apt-get update"
		apt-get update -qq > "$work/apt-update.log" 2>&1
		apt-cache show "$pkg=$ver" > /dev/null 2>&1 && return 0
	fi
	cand=$(apt-cache policy "$meta" 2> /dev/null | awk '/Candidate:/ { print $2 }')
	dep=$(apt-cache show "$meta=$cand" 2> /dev/null | sed -n 's/^Depends: //p' | head -n 1 |
		tr ',' '\n' | grep -m 1 'linux-image')
	pkg=$(echo "$dep" | awk '{ print $1 }')
	ver=$(echo "$dep" | sed -n 's/.*(= \(.*\)).*/\1/p')
	if [ -z "$pkg" ] || [ -z "$ver" ]; then
		reason="neither $pinned nor $meta is in the apt sources (apt-get update?)"
		return 1
	fi
	say "$pinned is no longer in Debian's archive; using $pkg=$ver"
}

# download_deb: sets deb to the package's .deb in $kout/debs, downloaded if missing
download_deb() {
	deb=$(ls "$kout/debs/${pkg}_${ver}_"*.deb 2> /dev/null | head -n 1)
	[ -n "$deb" ] && return 0
	mkdir -p "$kout/debs"
	say "apt-get download $pkg=$ver"
	if ! (cd "$kout/debs" && apt-get download -q "$pkg=$ver") > "$work/apt.log" 2>&1; then
		reason="apt-get download $pkg=$ver failed: $(grep -m 1 -E '^(E|Err):' "$work/apt.log")"
		return 1
	fi
	deb=$(ls "$kout/debs/${pkg}_${ver}_"*.deb 2> /dev/null | head -n 1)
}

# fetch_debian: sets kdir to the unpacked package (its boot/ only; the
# modules the guests load are taken from the .deb by guest_modules)
fetch_debian() {
	kdir="$kout/debian/${pkg}_$ver"
	[ -d "$kdir/boot" ] && return 0
	download_deb || return 1
	rm -rf "$kdir.tmp"
	mkdir -p "$kdir.tmp"
	dpkg-deb -x "$deb" "$kdir.tmp" && rm -rf "$kdir.tmp/lib" "$kdir.tmp/usr" && mv "$kdir.tmp" "$kdir"
}

# ---- kernel modules for the guests ------------------------------------------

# What the guest tests load (70-net_netem), NAME:CONFIG_OPTION, and the
# options that must be built in.  A module the kernel builds as one (=m)
# is taken from the case kernel's own package with what it depends on
# (modinfo -F depends), decompressed (xz, zstd, gzip: the guest's busybox
# insmod reads plain .ko), and goes into the case's cpio as /modules/NAME.ko;
# one built in (=y) needs nothing.
GUEST_MODULES="veth:VETH sch_netem:NET_SCH_NETEM tcp_diag:INET_TCP_DIAG"
GUEST_BUILTINS="NET_NS"

# add_module TREE OUT NAME: NAME's dependencies, then NAME, from TREE (the
# package's lib/modules) into OUT as NAME.ko; appends to mod_order
add_module() {
	local tree=$1 out=$2 name=$3 file dep
	case " $mod_order " in *" $name "*) return 0 ;; esac
	# a module's name has _ where its file may have -
	file=$(find "$tree" -name "$(echo "$name" | tr _ '?').ko*" | head -n 1)
	[ -n "$file" ] || { reason="module $name is not in $(basename "$deb")"; return 1; }
	case $file in
	*.ko) cp "$file" "$out/$name.ko" ;;
	*.ko.xz) xz -dc "$file" > "$out/$name.ko" ;;
	*.ko.zst) zstd -qdc "$file" > "$out/$name.ko" ;;
	*.ko.gz) gzip -dc "$file" > "$out/$name.ko" ;;
	*) reason="$file: unknown module compression"; return 1 ;;
	esac || { reason="cannot decompress $file"; return 1; }
	for dep in $(modinfo -F depends "$out/$name.ko" | tr ',' ' '); do
		add_module "$tree" "$out" "$dep" || return 1
	done
	mod_order="$mod_order $name"
}

# guest_modules: sets kmods (the modules to load, in order, copied into
# $cdir/root/modules) and klacks (the CONFIG_ options the kernel lacks);
# cached in $kdir/guest-modules for Debian kernels.  Returns 1 (reason set)
# when a module the config promises cannot be had (the guest's
# KMODULES_ERROR: the tests that need it fail).
guest_modules() {
	kmods="" klacks=""
	for o in $GUEST_BUILTINS; do cfg "$o" || klacks="$klacks CONFIG_$o"; done
	mwant=""
	for mo in $GUEST_MODULES; do
		m=${mo%%:*} o=${mo#*:}
		if cfg "$o"; then :
		elif grep -q "^CONFIG_$o=m" "$config"; then mwant="$mwant $m"
		else klacks="$klacks CONFIG_$o"
		fi
	done
	[ -n "$mwant" ] || return 0
	case $spec in debian:*) ;; *) reason="modules$mwant, but no package to take them from"; return 1 ;; esac
	cache="$kdir/guest-modules"
	if [ "$(cat "$cache/wanted" 2> /dev/null)" != "$mwant" ]; then
		download_deb || return 1
		rm -rf "$cache" "$cache.tree"
		mkdir -p "$cache" "$cache.tree"
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$cache.tree" --wildcards '*.ko*' ||
			{ reason="cannot unpack the modules of $deb"; return 1; }
		mod_order=""
		for m in $mwant; do
			add_module "$cache.tree" "$cache" "$m" || { rm -rf "$cache.tree"; return 1; }
		done
		rm -rf "$cache.tree"
		echo "$mod_order" > "$cache/order"
		echo "$mwant" > "$cache/wanted"
	fi
	kmods=$(cat "$cache/order")
	mkdir -p "$cdir/root/modules"
	for m in $kmods; do cp "$cache/$m.ko" "$cdir/root/modules/"; done
}

# ---- one case -------------------------------------------------------------------

failed=0 ran=0
rm -f "$work/rows"

row() { # one markdown table row: case, kernel, BTF from, result, seconds, features, completeness
	line="|"
	for f in "$@"; do line="$line $f |"; done
	echo "$line" >> "$work/rows"
}

run_case() { # name kernel-spec btf-mode
	name=$1 spec=$2 mode=$3
	cdir="$work/$name"
	rm -rf "$cdir"
	mkdir -p "$cdir/root"
	reason=""
	case $spec in
	debian:*)
		if ! resolve_debian "${spec#debian:}" || ! fetch_debian; then
			echo "SKIPPED: $name: $reason"
			row "$name" "-" "-" "SKIPPED ($reason)" "-" "-" "-"
			return 0
		fi
		image=$(ls "$kdir"/boot/vmlinuz-*) config=$(ls "$kdir"/boot/config-*)
		btf_src=$image origin="Debian $pkg $ver (apt-get download)"
		;;
	build:nobtf)
		if [ ! -s "$kout/nobtf/current/bzImage" ]; then
			if [ "${BUILD_KERNELS:-1}" != 1 ]; then
				echo "SKIPPED: $name: the no-BTF kernel is not built (make test-kernels builds it, ~15-25 min)"
				row "$name" "-" "-" "SKIPPED (not built; make test-kernels)" "-" "-" "-"
				return 0
			fi
			say "building the no-BTF kernel (log: $kout/nobtf-build.log)"
			sh tests/kernels/build-nobtf.sh "$kout/nobtf" > "$kout/nobtf-build.log" 2>&1 || {
				tail -n 20 "$kout/nobtf-build.log"
				echo "FAIL: $name: the kernel build failed"
				row "$name" "-" "-" "FAIL (kernel build)" "-" "-" "-"
				failed=$((failed + 1))
				return 0
			}
		fi
		k="$kout/nobtf/current"
		image=$k/bzImage config=$k/config btf_src=$k/vmlinux
		origin="linux-source-6.1 built by tests/kernels/build-nobtf.sh without CONFIG_DEBUG_INFO_BTF"
		;;
	*) echo "FAIL: $name: unknown kernel '$spec'"; failed=$((failed + 1)); return 0 ;;
	esac
	key=$(sh btf-archive/btfgen.sh key "$image") || { failed=$((failed + 1)); return 0; }
	release=${key%%"$tab"*} build=${key#*"$tab"}

	# What the kernel's config promises: the oracle for the features test.
	cfg() { grep -q "^CONFIG_$1=y" "$config"; }
	yn() { if "$@"; then echo yes; else echo no; fi; }
	kbtf=no
	[ "$mode" = kernel ] && cfg DEBUG_INFO_BTF && kbtf=yes
	fentry=no
	[ $kbtf = yes ] && cfg DYNAMIC_FTRACE_WITH_DIRECT_CALLS && fentry=yes
	expect="kernel_btf=$kbtf kprobes=$(yn eval 'cfg KPROBES && cfg KPROBE_EVENTS') fentry=$fentry"
	expect="$expect tp_btf=$kbtf raw_tp=yes tracepoints=$(yn cfg FTRACE_SYSCALLS) ringbuf=yes"
	expect="$expect task_pt_regs=$(yn cfg DEBUG_INFO_BTF) probe_read_user=yes bpf_loop=yes mmap_maps=yes"
	# the TCP metrics' send/receive hooks: fentry, else kprobes (no 6.3+ tracepoints in 6.1)
	expect_net=""
	if [ $fentry = yes ]; then expect_net=fentry
	elif cfg KPROBES && cfg KPROBE_EVENTS; then expect_net=kprobe
	fi

	# a module that cannot be had fails the tests that load it, not the case
	kmods_error=""
	guest_modules || { kmods_error=$reason; say "$name: $reason"; }

	ember_args="" archive_dir="" btf_from=kernel
	if [ "$mode" != kernel ]; then
		if grep -qF "entry$tab$release$tab$build$tab" build/btf-archive/index 2> /dev/null; then
			btf_from="archive (embedded)"
		else
			say "$name: no embedded archive entry for $release; making one from $(basename "$btf_src")"
			mkdir -p "$cdir/root/archive"
			if ! BTF_SOURCES="$cdir/sources" sh btf-archive/btfgen.sh add "$btf_src" "$origin" ||
				! BTF_SOURCES="$cdir/sources" sh btf-archive/btfgen.sh min "$cdir/root/archive" build/bpf/*/*.bpf.o; then
				echo "FAIL: $name: cannot make the archive entry"
				failed=$((failed + 1))
				return 0
			fi
			ember_args="--btf-archive /archive" archive_dir=/archive
			btf_from="archive (--btf-archive, made at test time)"
		fi
	fi
	cat > "$cdir/root/case.env" << EOF
CASE='$name'
HIDE_BTF=$([ "$mode" = hidden ] && echo 1 || echo 0)
EXPECT='$expect'
EXPECT_BTF=$([ "$mode" = kernel ] && echo kernel || echo archive)
EXPECT_NET='$expect_net'
EMBER_ARGS='$ember_args'
EMBER_BTF_ARCHIVE='$archive_dir'
KMODULES='$kmods'
KERNEL_LACKS='$klacks'
KMODULES_ERROR='$kmods_error'
SCALE=${SCALE:-1}
TESTS='${GUEST_TESTS:-}'
TEST_TIMEOUT=${GUEST_TEST_TIMEOUT:-300}
${GUEST_ENV:-}
EOF
	(cd "$cdir/root" && find . | cpio -o -H newc --quiet) > "$cdir/case.cpio"
	cat "$work/common.cpio" "$cdir/case.cpio" > "$cdir/initrd"

	# One host thread for both vCPUs (thread=single): with multi-threaded
	# TCG, guests that attach fentry/tp_btf programs (kernel text patching)
	# while perf-event programs run froze now and then, and libunwind
	# disagreed with stack snapshots on 6.12; round-robin TCG did neither in
	# every run since, costs no wall time here, and spares the shared host.
	say "$name: booting $release ($mode BTF) in qemu"
	start=$(date +%s)
	timeout "$tmo" qemu-system-x86_64 -nodefaults -display none -no-reboot \
		-machine pc -accel tcg,thread=single -cpu max -smp "${QEMU_SMP:-2}" -m "${QEMU_MEM:-1024}" \
		-kernel "$image" -initrd "$cdir/initrd" \
		-append "console=ttyS0 panic=-1 rdinit=/init loglevel=5" \
		-serial "file:$cdir/console.log" -serial "file:$cdir/results.log" \
		> "$cdir/qemu.log" 2>&1
	qrc=$?
	secs=$(($(date +%s) - start))
	rm -f "$cdir/initrd"
	ran=$((ran + 1))
	tr -d '\r' < "$cdir/results.log" > "$cdir/results.txt"
	res=$(grep '^RESULT ' "$cdir/results.txt")
	echo "$res" | sed 's/^RESULT /  /'
	nfail=$(echo "$res" | grep -c ' FAIL')
	npass=$(echo "$res" | grep -c ' PASS')
	nskip=$(echo "$res" | grep -c ' SKIP')
	status="$npass passed, $nfail failed, $nskip skipped"
	if ! grep -q '^END ' "$cdir/results.txt"; then
		status="$status; guest did not finish (qemu exit $qrc; see $cdir/console.log)"
		tail -n 30 "$cdir/console.log"
		nfail=$((nfail + 1))
	fi
	[ "$nfail" -gt 0 ] && failed=$((failed + 1))
	m=$(sed -n 's/^METRIC [^ ]* //p' "$cdir/results.txt" | tr '\n' ' ')
	get() { echo " $m " | sed -n "s/.* $1=\([^ ]*\) .*/\1/p"; }
	hooks="kprobes $(get features | tr ',' '\n' | sed -n 's/^kprobes=//p'), fentry $(get features | tr ',' '\n' | sed -n 's/^fentry=//p'), tp_btf $(get features | tr ',' '\n' | sed -n 's/^tp_btf=//p'), task_pt_regs $(get features | tr ',' '\n' | sed -n 's/^task_pt_regs=//p')"
	compl="rooted $(get zoo_rooted_permille)/1000, deep150 $(get zoo_deep150), nofp $(get nofp_chain_pct)%, go $(get go_chain_pct)%, syscall $(get syscall_chain_pct)%, fallbacks rooted $(get fallback_zoo_rooted_permille)/1000, libunwind $(get libunwind_agreement_pct)%, verifier insns $(get verifier_insns); net $(get auto_net_io) $(get auto_sent_bytes) B$([ -n "$(get nofentry_net_io)" ] && echo ", $(get nofentry_net_io) $(get nofentry_sent_bytes) B"), spans $(get spans_requests)/$(get spans_client_ok)$([ -n "$(get netem_rtt_ms)" ] && echo ", netem rtt $(get netem_rtt_ms)/$(get netem_ss_rtt_ms) ms (ember/ss), retrans $(get netem_retrans)/$(get netem_nstat_retrans) (ember/nstat)")"
	row "$name" "$release" "$btf_from" "$status" "$secs" "$hooks" "$compl"
	say "$name: $status in $secs s"
}

# ---- main ---------------------------------------------------------------------------

command -v qemu-system-x86_64 > /dev/null || { echo "SKIPPED: qemu-system-x86_64 not installed (scripts/setup-deps.sh)"; exit 77; }
[ -x build/ember ] || { echo "FAIL: build/ember not built"; exit 1; }
sh tests/kernels/initramfs.sh "$work/common.cpio" || { echo "FAIL: cannot build the initramfs"; exit 1; }

want=" $* "
grep -v '^#' "$conf" > "$work/cases"
while read -r name spec mode <&3; do
	[ -n "$name" ] || continue
	[ $# -eq 0 ] || case $want in *" $name "*) ;; *) continue ;; esac
	run_case "$name" "$spec" "$mode" < /dev/null
done 3< "$work/cases"
[ -f "$work/rows" ] || { echo "SKIPPED: no case in $conf matches '$*'"; exit 77; }
{
	echo "| case | kernel | BTF from | result | boot+tests (s) | features | completeness |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
	cat "$work/rows"
} > "$work/summary.md"
echo
cat "$work/summary.md"
[ "$failed" -gt 0 ] && exit 1
[ "$ran" -eq 0 ] && exit 77
exit 0
