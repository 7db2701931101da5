#!/bin/sh
# Build aplo's image as an OCI archive without a registry or a container
# builder, from the recipe in Containerfile next to this script:
#
#   deploy/image/build.sh APLO_BINARY OUT.tar [IMAGE_NAME]
#   ctr -n k8s.io images import OUT.tar        (on each node)
#
# IMAGE_NAME defaults to ghcr.io/aplo-dev/aplo:0.1.0, the name deploy/base
# uses. The Containerfile's `FROM debian:<suite>-slim`, `ARG PACKAGES="..."`
# and `ARG APLO_UID=...` lines choose the suite, the packages and the UID;
# mmdebstrap makes the Debian root (minbase, the variant Debian's slim images
# are made from, with their path excludes: no docs but copyrights, no man
# pages, info or locales; apt lists removed), the packages are installed
# without recommends, the aplo user and group are added as the Containerfile
# adds them, and the binary is copied to /usr/local/bin/aplo. One layer,
# written by oci.sh. Needs root (mmdebstrap's root mode, chroot) and the
# network to a Debian mirror:
#
#   DEBIAN_MIRROR           default http://deb.debian.org/debian
#   DEBIAN_SECURITY_MIRROR  default http://deb.debian.org/debian-security
#   SOURCE_DATE_EPOCH       every mtime and the config's date (default: the
#                           last commit's); same packages, binary and epoch
#                           give the same archive
set -eu

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=deploy/image/oci.sh
. "$here/oci.sh"
containerfile=$here/Containerfile

fail() {
	echo "deploy/image/build.sh: $*" >&2
	exit 1
}

# recipe_line SED_EXPRESSION WHAT: the one value the expression extracts
# from the Containerfile.
recipe_line() {
	value=$(sed -n "$1" "$containerfile")
	case $value in
	'') fail "$containerfile has no $2 line" ;;
	*'
'*) fail "$containerfile has more than one $2 line" ;;
	esac
	echo "$value"
}

read_recipe() {
	[ -f "$containerfile" ] || fail "$containerfile is missing"
	suite=$(recipe_line 's/^FROM debian:\([a-z]*\)-slim[[:space:]]*$/\1/p' 'FROM debian:<suite>-slim')
	packages=$(recipe_line 's/^ARG PACKAGES="\([a-z0-9.+ -]*\)"[[:space:]]*$/\1/p' 'ARG PACKAGES="..."')
	uid=$(recipe_line 's/^ARG APLO_UID=\([0-9][0-9]*\)[[:space:]]*$/\1/p' 'ARG APLO_UID=<number>')
}

# check_binary PATH: an executable x86-64 ELF file (the image is linux/amd64).
check_binary() {
	[ -f "$1" ] && [ -x "$1" ] || fail "aplo binary $1 is not an executable file"
	magic=$(od -An -tx1 -N4 "$1" | tr -d ' \n')
	machine=$(od -An -tx1 -j18 -N2 "$1" | tr -d ' \n')
	[ "$magic" = 7f454c46 ] || fail "aplo binary $1 is not an ELF executable"
	[ "$machine" = 3e00 ] || fail "aplo binary $1 is not built for x86-64 (the image is linux/amd64)"
}

need_mmdebstrap() {
	command -v mmdebstrap >/dev/null && command -v mmtarfilter >/dev/null && return 0
	echo "deploy/image/build.sh: installing mmdebstrap" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >&2 ||
		fail "apt-get install mmdebstrap failed (run apt-get update first?)"
}

# bootstrap LAYER_TAR: the root filesystem as a tarball, /dev left empty
# (runtimes mount their own). Through a file rather than a pipe: sh has no
# pipefail to tell mmdebstrap's failure.
bootstrap() {
	mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
	security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
	# Read by the hook that installs the binary: mmdebstrap runs hooks with
	# our environment.
	APLO_IMAGE_BINARY=$binary
	export APLO_IMAGE_BINARY
	# The path excludes are those of Debian's slim images (kept in the
	# image's /etc/dpkg/dpkg.cfg.d, as there). The groupadd and useradd
	# hooks are the Containerfile's RUN commands; keep them alike.
	mmdebstrap --mode=root --variant=minbase --format=tar \
		--include="$(echo "$packages" | tr -s ' ' ',')" \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/groff/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/lintian/*' \
		--dpkgopt='path-exclude=/usr/share/linda/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--customize-hook="chroot \"\$1\" groupadd --gid $uid aplo" \
		--customize-hook="chroot \"\$1\" useradd --uid $uid --gid aplo --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --no-log-init aplo" \
		--customize-hook='install -m 0755 "$APLO_IMAGE_BINARY" "$1/usr/local/bin/aplo"' \
		--customize-hook='rm -f "$1"/etc/passwd- "$1"/etc/group- "$1"/etc/shadow- "$1"/etc/gshadow-' \
		--customize-hook=': >"$1/etc/resolv.conf"; : >"$1/etc/hostname"' \
		"$suite" "$tmp/root.tar" \
		"deb $mirror $suite main" \
		"deb $mirror $suite-updates main" \
		"deb $security $suite-security main" ||
		fail "mmdebstrap failed to make the $suite root (see its messages above)"
	mmtarfilter --path-exclude='/dev/*' <"$tmp/root.tar" >"$1" ||
		fail "mmtarfilter failed to empty /dev in the root tarball"
	rm "$tmp/root.tar"
}

[ $# -ge 2 ] && [ $# -le 3 ] || fail "usage: deploy/image/build.sh APLO_BINARY OUT.tar [IMAGE_NAME]"
check_binary "$1"
binary=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
out=$2
[ -d "$(dirname "$out")" ] && [ -w "$(dirname "$out")" ] ||
	fail "cannot write $out: its directory is missing or not writable"
name=${3:-ghcr.io/aplo-dev/aplo:0.1.0}
oci_check_name "$name"
read_recipe
[ "$(id -u)" -eq 0 ] || fail "run as root: mmdebstrap's root mode chroots into the new tree"
need_mmdebstrap

start=$(date +%s)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aplo-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "deploy/image/build.sh: debian $suite, packages: $packages; aplo uid $uid" >&2
bootstrap "$tmp/layer.tar"
layer_size=$(stat -c %s "$tmp/layer.tar")
oci_archive "$tmp" "$tmp/layer.tar" "$out" "$name" \
	'{"Entrypoint":["/usr/local/bin/aplo"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}'
echo "deploy/image/build.sh: wrote $out ($name): $(($(stat -c %s "$out") / 1048576)) MiB, $((layer_size / 1048576)) MiB unpacked, in $(($(date +%s) - start)) s" >&2
