#!/usr/bin/env bash
# Starts (once) a single-replica OpenStack Swift on loopback for the tests of
# the Swift storage driver: proxy with TempAuth, temp URLs and static large
# objects, account, container and object servers, and memcached, all under
# $1 (a directory in the tool cache). Installs Debian's Swift packages if
# they are missing. Prints the environment that the tests read.
# Safe to run repeatedly: a running instance is reused.
set -euo pipefail

DIR=${1:?usage: swift-aio.sh DIR}
PROXY_PORT=${KEPPEL_SWIFT_AIO_PORT:-28080}
ACCOUNT_PORT=$((PROXY_PORT - 1878))   # 26202
CONTAINER_PORT=$((PROXY_PORT - 1879)) # 26201
OBJECT_PORT=$((PROXY_PORT - 1880))    # 26200
MEMCACHED_PORT=$((PROXY_PORT - 6869)) # 21211
AUTH_URL="http://127.0.0.1:$PROXY_PORT/auth/v1.0"

print_env() {
  echo "export KEPPEL_TEST_SWIFT_AUTH_URL=$AUTH_URL"
  echo "export KEPPEL_TEST_SWIFT_USER=keppel:tester"
  echo "export KEPPEL_TEST_SWIFT_KEY=testing"
}

healthy() {
  curl -fsS -o /dev/null "http://127.0.0.1:$PROXY_PORT/healthcheck" 2>/dev/null &&
    curl -fsS -o /dev/null -H 'X-Auth-User: keppel:tester' -H 'X-Auth-Key: testing' "$AUTH_URL" 2>/dev/null
}

if healthy; then print_env; exit 0; fi

if ! command -v swift-proxy-server >/dev/null || ! command -v memcached >/dev/null; then
  echo "installing OpenStack Swift and memcached (Debian packages)" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "Swift is not installed; install it: apt-get install --no-install-recommends swift swift-proxy swift-object swift-container swift-account memcached" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    swift swift-proxy swift-object swift-container swift-account memcached >&2
fi

# Swift always reads the cluster-wide hash settings from /etc/swift/swift.conf.
if [ ! -f /etc/swift/swift.conf ]; then
  mkdir -p /etc/swift
  cat > /etc/swift/swift.conf <<CONF
[swift-hash]
swift_hash_path_suffix = keppel-test-aio
swift_hash_path_prefix = keppel-test-aio

[storage-policy:0]
name = Policy-0
default = yes
CONF
fi

etc="$DIR/etc"; srv="$DIR/srv"; run="$DIR/run"
mkdir -p "$etc" "$srv/d1" "$run"
for pid in "$run"/*.pid; do
  [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
done
sleep 0.2

if [ ! -f "$etc/object.ring.gz" ]; then
  (
    cd "$etc"
    for ring in account:$ACCOUNT_PORT container:$CONTAINER_PORT object:$OBJECT_PORT; do
      name=${ring%%:*}; port=${ring##*:}
      swift-ring-builder "$name.builder" create 6 1 1 >/dev/null
      swift-ring-builder "$name.builder" add "r1z1-127.0.0.1:$port/d1" 100 >/dev/null
      swift-ring-builder "$name.builder" rebalance >/dev/null
    done
  )
fi

server_conf() { # name port
  cat > "$etc/$1-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
devices = $srv
mount_check = false
swift_dir = $etc
workers = 0
user = $(id -un)
log_level = WARNING

[pipeline:main]
pipeline = $1-server

[app:$1-server]
use = egg:swift#$1
CONF
}
server_conf account "$ACCOUNT_PORT"
server_conf container "$CONTAINER_PORT"
server_conf object "$OBJECT_PORT"

cat > "$etc/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
swift_dir = $etc
workers = 0
user = $(id -un)
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl slo dlo tempauth copy proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_keppel_tester = testing .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:copy]
use = egg:swift#copy
CONF

start() { # name command...
  local name=$1; shift
  nohup setsid "$@" > "$run/$name.log" 2>&1 &
  echo $! > "$run/$name.pid"
}
memcached_user=$(id -un); [ "$memcached_user" = root ] && memcached_user=nobody
start memcached memcached -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -u "$memcached_user" -m 64
start account swift-account-server "$etc/account-server.conf"
start container swift-container-server "$etc/container-server.conf"
start object swift-object-server "$etc/object-server.conf"
start proxy swift-proxy-server "$etc/proxy-server.conf"

for _ in $(seq 1 100); do
  if healthy; then print_env; exit 0; fi
  sleep 0.2
done
echo "Swift did not start; logs in $run" >&2
tail -n 20 "$run"/*.log >&2 || true
exit 1
