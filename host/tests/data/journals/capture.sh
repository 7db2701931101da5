#!/usr/bin/env bash
# How the stores in this directory were captured: `aplo serve --api-only
# --driver simulate` (no disk touched) with `--fault-at POINT`, asked over
# its REST API to create, delete, expand or move a brick, SIGKILLed when it
# says it reached the point, then `aplo db export`. One store per point,
# each with exactly one unfinished operation.
#
# Usage: capture.sh APLO-FAULTY OUT-DIR
#   APLO-FAULTY: an `aplo-faulty` binary (tests/src/bin; the fault-injection
#   build). The stores here came from the one built at commit 54718e6.
set -euo pipefail
aplo=$1
out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
# Three nodes in three zones, two plain devices each.
cat >"$work/topology.json" <<'JSON'
{"clusters": [{"nodes": [
 {"node": {"hostnames": {"manage": ["node1.example.com"], "storage": ["192.168.10.100"]}, "zone": 1}, "devices": ["/dev/sdb", "/dev/sdc"]},
 {"node": {"hostnames": {"manage": ["node2.example.com"], "storage": ["192.168.10.101"]}, "zone": 2}, "devices": ["/dev/sdb", "/dev/sdc"]},
 {"node": {"hostnames": {"manage": ["node3.example.com"], "storage": ["192.168.10.102"]}, "zone": 3}, "devices": ["/dev/sdb", "/dev/sdc"]}
]}]}
JSON
port=18400

# serve DB DEVICE-SIZE LOG [--fault-at POINT]: start a server, wait until it
# answers, print its pid.
serve() {
  local db=$1 size=$2 log=$3
  shift 3
  port=$((port + 1))
  url=http://127.0.0.1:$port
  "$aplo" --db "$db" "$@" serve --api-only --driver simulate --simulate-device-size "$size" \
    --no-auth --topology "$work/topology.json" --listen "127.0.0.1:$port" --log warn >"$log" 2>&1 &
  pid=$!
  until curl -s -o /dev/null "$url/hello"; do sleep 0.1; done
  sleep 1.5 # the store opens after the listener
}

# capture NAME POINT DEVICE-SIZE PREPARE COMMAND
capture() {
  local name=$1 point=$2 size=$3 prepare=$4 command=$5 dir=$work/$1
  mkdir -p "$dir"
  serve "$dir/store.redb" "$size" "$dir/prepare.log"
  eval "$prepare"
  kill "$pid"
  wait "$pid" || true
  serve "$dir/store.redb" "$size" "$dir/fault.log" --fault-at "$point"
  (eval "$command" >"$dir/command.log" 2>&1 &)
  until grep -q "fault point $point reached" "$dir/fault.log"; do sleep 0.1; done
  kill -9 "$pid"
  wait "$pid" || true
  "$aplo" --db "$dir/store.redb" db export --out "$out/$name.json"
}

volume_v='"$aplo" volume create --server "$url" --size 10 --name v >/dev/null'
small_v='"$aplo" volume create --server "$url" --size 1 --name v >/dev/null'
capture create-at-volume create-volume:volume 1Ti : '"$aplo" volume create --server "$url" --size 10 --name v'
capture create-at-start create-volume:start 1Ti : '"$aplo" volume create --server "$url" --size 10 --name v'
capture delete-at-delete delete-volume:delete 1Ti "$volume_v" '"$aplo" volume delete --server "$url" v'
# 1.5 GiB devices: growing 1 GiB to 2 cannot happen in place, so a set is added.
capture expand-at-bricks expand-volume:bricks 1536Mi "$small_v" '"$aplo" volume expand --server "$url" v --size 2'
capture expand-at-add-bricks expand-volume:add-bricks 1536Mi "$small_v" '"$aplo" volume expand --server "$url" v --size 2'
capture expand-at-grow expand-volume:grow 2Gi "$small_v" '"$aplo" volume expand --server "$url" v --size 2'
evict='"$aplo" brick evict --server "$url" "$("$aplo" volume info --server "$url" v --json | python3 -c "import json, sys; print(json.load(sys.stdin)[\"bricks\"][0][\"id\"])")"'
capture replace-at-brick replace-brick:brick 1Ti "$small_v" "$evict"
capture replace-at-replace replace-brick:replace 1Ti "$small_v" "$evict"

# An undo interrupted: the create stopped after `volume` is undone by the
# recovery at start, which is stopped at the undo's first step.
dir=$work/undo-create-at-stop
mkdir -p "$dir"
cp "$work/create-at-volume/store.redb" "$dir/store.redb"
"$aplo" --db "$dir/store.redb" --fault-at create-volume:stop serve --api-only --driver simulate \
  --no-auth --listen 127.0.0.1:$((port + 1)) --log warn >"$dir/fault.log" 2>&1 &
pid=$!
until grep -q "fault point create-volume:stop reached" "$dir/fault.log"; do sleep 0.1; done
kill -9 "$pid"
wait "$pid" || true
"$aplo" --db "$dir/store.redb" db export --out "$out/undo-create-at-stop.json"
