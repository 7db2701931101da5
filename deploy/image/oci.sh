# Shared by deploy/image/build.sh and tests/images/build.sh (sourced, not
# run): writes a single-layer OCI image archive (image-layout 1.0.0, as
# `ctr images import` and `podman load` read it) from a root filesystem.
#
#   oci_layer_from_dir DIR LAYER_TAR
#       DIR's contents as a layer tarball: names sorted, owner root, every
#       mtime $SOURCE_DATE_EPOCH, so equal trees give equal layers.
#   oci_archive SCRATCH LAYER_TAR OUT_TAR IMAGE_NAME CONFIG_JSON
#       OUT_TAR: oci-layout, index.json and blobs/sha256/ holding the
#       gzip-compressed layer, the image config (linux/amd64, CONFIG_JSON as
#       its "config" object: Entrypoint, Cmd, Env...) and the manifest.
#       SCRATCH is an empty directory of the caller's (who removes it).
#
# The index names the image twice: containerd (1.6 included) takes the name
# from io.containerd.image.name; without it, from
# org.opencontainers.image.ref.name, used whole only if it holds '/', ':' or
# '@' (a bare tag becomes "import-<date>:<tag>"). Other tools read ref.name,
# so both carry the full name.
#
# Needs GNU tar, gzip, sha256sum and GNU date (Debian's coreutils).

# Every timestamp written (layer mtimes, config "created"): the environment's
# SOURCE_DATE_EPOCH, else the last commit that touched the calling script's
# directory, else the last commit, else now.
oci_epoch() {
	git -C "$(dirname "$0")" log -1 --format=%ct -- . 2>/dev/null | grep . ||
		git -C "$(dirname "$0")" log -1 --format=%ct 2>/dev/null | grep . ||
		date +%s
}
[ -n "${SOURCE_DATE_EPOCH:-}" ] || SOURCE_DATE_EPOCH=$(oci_epoch)
export SOURCE_DATE_EPOCH

oci_fail() {
	echo "oci.sh: $*" >&2
	exit 1
}

# oci_check_name NAME: a reference such as host/path/name:tag. Limited to the
# characters of a reference so it goes into JSON unescaped.
oci_check_name() {
	case $1 in
	'' | *[!A-Za-z0-9._/:@-]* | [!A-Za-z0-9]*)
		oci_fail "image name '$1' is not a reference like registry.example/name:tag"
		;;
	esac
	case ${1##*/} in
	*:?*) ;;
	*) oci_fail "image name '$1' has no tag (want name:tag)" ;;
	esac
}

# oci_tar DIR OUT MEMBER...: a reproducible tarball of MEMBERs under DIR.
oci_tar() {
	oci_tar_dir=$1 oci_tar_out=$2
	shift 2
	tar --create --file "$oci_tar_out" --directory "$oci_tar_dir" \
		--format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		--sort=name --owner=0 --group=0 --numeric-owner \
		--mtime="@$SOURCE_DATE_EPOCH" "$@" ||
		oci_fail "could not tar $oci_tar_dir into $oci_tar_out"
}

oci_layer_from_dir() {
	[ -d "$1" ] || oci_fail "layer root $1 is not a directory"
	oci_tar "$1" "$2" .
}

oci_sha256() {
	oci_sum=$(sha256sum "$1") || oci_fail "could not hash $1"
	echo "${oci_sum%% *}"
}

oci_size() {
	stat -c %s "$1" || oci_fail "could not stat $1"
}

# oci_blob LAYOUT FILE: moves FILE to LAYOUT/blobs/sha256/<its digest> and
# prints "sha256:<hex> <size>", the fields of its descriptor.
oci_blob() {
	oci_hex=$(oci_sha256 "$2")
	oci_bytes=$(oci_size "$2")
	mv "$2" "$1/blobs/sha256/$oci_hex" || oci_fail "could not store blob $2"
	echo "sha256:$oci_hex $oci_bytes"
}

# oci_descriptor MEDIA_TYPE LAYOUT FILE: stores FILE as a blob and prints
# its descriptor's JSON members.
oci_descriptor() {
	oci_desc=$(oci_blob "$2" "$3")
	printf '"mediaType":"%s","digest":"%s","size":%s' "$1" "${oci_desc% *}" "${oci_desc#* }"
}

oci_archive() {
	oci_scratch=$1 oci_layer=$2 oci_out=$3 oci_name=$4 oci_config=$5
	oci_check_name "$oci_name"
	[ -f "$oci_layer" ] || oci_fail "layer tarball $oci_layer is missing"
	[ -d "$oci_scratch" ] || oci_fail "scratch directory $oci_scratch is missing"
	oci_layout=$oci_scratch/layout
	mkdir -p "$oci_layout/blobs/sha256"
	oci_created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ) ||
		oci_fail "SOURCE_DATE_EPOCH '$SOURCE_DATE_EPOCH' is not a number of seconds"

	# The config names the uncompressed layer's digest (its diff_id); the
	# manifest, the compressed blob's.
	oci_diff_id=sha256:$(oci_sha256 "$oci_layer")
	gzip -n -c "$oci_layer" >"$oci_scratch/layer.gz" || oci_fail "could not compress $oci_layer"
	oci_layer_desc=$(oci_descriptor application/vnd.oci.image.layer.v1.tar+gzip "$oci_layout" "$oci_scratch/layer.gz")

	printf '{"created":"%s","architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
		"$oci_created" "$oci_config" "$oci_diff_id" >"$oci_scratch/config.json"
	oci_config_desc=$(oci_descriptor application/vnd.oci.image.config.v1+json "$oci_layout" "$oci_scratch/config.json")

	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{%s},"layers":[{%s}]}' \
		"$oci_config_desc" "$oci_layer_desc" >"$oci_scratch/manifest.json"
	oci_manifest_desc=$(oci_descriptor application/vnd.oci.image.manifest.v1+json "$oci_layout" "$oci_scratch/manifest.json")

	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
		"$oci_manifest_desc" "$oci_name" "$oci_name" >"$oci_layout/index.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$oci_layout/oci-layout"

	# Written beside OUT and renamed: an interrupted build leaves no archive
	# that looks whole.
	oci_tar "$oci_layout" "$oci_out.part" oci-layout index.json blobs
	mv "$oci_out.part" "$oci_out" || oci_fail "could not move the archive to $oci_out"
	rm -rf "$oci_layout"
}
