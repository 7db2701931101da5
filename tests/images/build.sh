#!/bin/sh
# Build the test cluster's small images as OCI archives, for
# `ctr -n k8s.io images import` on nodes that reach no registry:
#
#   OUT/pause.tar   aplo.test/pause:1  pod sandbox: sleeps until TERM or INT,
#                                      then exits 0
#   OUT/web.tar     aplo.test/web:1    busybox httpd serving /srv/www (where
#                                      pods mount the volume) on $PORT,
#                                      default 8080; exits 0 on TERM or INT
#
#   tests/images/build.sh OUT
#
# Both are one layer, the same one: Debian's busybox-static (fetched with
# `apt-get download`, unpacked with dpkg-deb, not installed on the host) with
# every applet linked (sh, cat, df, ls, sleep, wget... for `kubectl exec`),
# /etc/passwd and /etc/group (root, nobody), /tmp and the two entrypoint
# scripts. The archives are written by deploy/image/oci.sh. An archive is
# rebuilt only if OUT/<name>.tar.key differs from the hash of this script and
# oci.sh.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
oci_sh=$here/../../deploy/image/oci.sh
# shellcheck source=deploy/image/oci.sh
. "$oci_sh"

fail() {
	echo "tests/images/build.sh: $*" >&2
	exit 1
}

# cache_key: changes whenever what builds the archives changes.
cache_key() {
	cat "$here/build.sh" "$oci_sh" | sha256sum | cut -d' ' -f1
}

# fresh ARCHIVE: the archive exists and was built by these scripts.
fresh() {
	[ -f "$1" ] && [ -f "$1.key" ] && [ "$(cat "$1.key")" = "$key" ]
}

# fetch_busybox DIR: busybox-static's files unpacked under DIR/deb.
fetch_busybox() {
	mkdir -p "$1/download"
	# apt drops privileges to _apt for downloads; let it reach and write
	# the download directory.
	chmod 0755 "$1"
	chown _apt "$1/download" 2>/dev/null || true
	(cd "$1/download" && apt-get download -q busybox-static >&2) ||
		fail "apt-get download busybox-static failed (run apt-get update first?)"
	dpkg-deb -x "$1"/download/busybox-static_*.deb "$1/deb" ||
		fail "could not unpack busybox-static's .deb"
	[ -x "$1/deb/bin/busybox" ] || fail "busybox-static's .deb holds no bin/busybox"
}

# link_applets BUSYBOX ROOT: a symlink to /bin/busybox for each applet.
link_applets() {
	"$1" --list-full >"$2.applets" || fail "$1 --list-full failed"
	while read -r applet; do
		case $applet in
		*/*) ;;
		*) continue ;; # linuxrc
		esac
		mkdir -p "$2/${applet%/*}"
		[ -e "$2/$applet" ] || ln -s /bin/busybox "$2/$applet"
	done <"$2.applets"
	rm "$2.applets"
}

# write_script PATH: standard input as an executable script.
write_script() {
	mkdir -p "$(dirname "$1")"
	cat >"$1"
	chmod 0755 "$1"
}

# make_root DIR: the shared root filesystem under DIR/root.
make_root() {
	root=$1/root
	mkdir -p "$root/bin" "$root/etc" "$root/srv/www" "$root/tmp" "$root/root"
	chmod 1777 "$root/tmp"
	cp "$1/deb/bin/busybox" "$root/bin/busybox"
	link_applets "$root/bin/busybox" "$root"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	# The pause process: a trapped signal interrupts `wait`, where it
	# would not interrupt a foreground sleep.
	write_script "$root/usr/local/bin/pause" <<-'EOF'
		#!/bin/sh
		# Sleeps until TERM or INT, then exits 0 (a pod sandbox's process).
		trap 'kill $! 2>/dev/null; exit 0' TERM INT
		while :; do
			sleep 3600 &
			wait $!
		done
	EOF
	write_script "$root/usr/local/bin/serve" <<-'EOF'
		#!/bin/sh
		# Serves /srv/www over HTTP on port $PORT (default 8080) until
		# TERM or INT, then exits 0.
		pid=
		trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; exit 0' TERM INT
		httpd -f -p "${PORT:-8080}" -h /srv/www &
		pid=$!
		wait "$pid"
	EOF
}

# build NAME IMAGE CONFIG_JSON: OUT/NAME.tar from the shared layer.
build() {
	archive=$out/$1.tar
	oci_archive "$tmp" "$tmp/layer.tar" "$archive" "$2" "$3"
	echo "$key" >"$archive.key"
	echo "tests/images/build.sh: $archive ($2): $(($(stat -c %s "$archive") / 1024)) KiB" >&2
}

[ $# -eq 1 ] || fail "usage: tests/images/build.sh OUT_DIR"
out=$1
mkdir -p "$out" || fail "cannot create output directory $out"
out=$(cd "$out" && pwd)
key=$(cache_key)

if fresh "$out/pause.tar" && fresh "$out/web.tar"; then
	echo "tests/images/build.sh: $out/pause.tar and $out/web.tar are up to date" >&2
	exit 0
fi

start=$(date +%s)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aplo-test-images.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fetch_busybox "$tmp"
make_root "$tmp"
oci_layer_from_dir "$tmp/root" "$tmp/layer.tar"

path='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'
build pause aplo.test/pause:1 "{\"Entrypoint\":[\"/usr/local/bin/pause\"],\"Env\":[$path]}"
build web aplo.test/web:1 "{\"Cmd\":[\"/usr/local/bin/serve\"],\"Env\":[$path],\"ExposedPorts\":{\"8080/tcp\":{}},\"WorkingDir\":\"/srv/www\"}"
echo "tests/images/build.sh: built in $(($(date +%s) - start)) s" >&2
