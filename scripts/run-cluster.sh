#!/usr/bin/env bash
# `scripts/run.sh --cluster`: DF-Middleware as a cluster on loopback
# (docs/scale-out.md). Three nats-server processes with JetStream (client
# ports 4222-4224), three dfm nodes (127.0.0.1:8081-8083, data in
# ./cluster-data/node<N>; admin and /metrics on 127.0.0.1:9181-9183) and nginx on 127.0.0.1:8080 in front of them,
# with the same sandboxes and development configuration as the embedded
# default (etc/dev.toml; the cluster settings come as DFM_CLUSTER_*).
# Ctrl-C stops everything; state stays in ./cluster-data and ./sandbox-data.
# Try: kill -9 one node's pid (cluster-data/node<N>.pid) and watch
# http://127.0.0.1:8080/v1/health move its partitions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target dfm
root=$PWD/cluster-data
mkdir -p "$root/nginx/logs" sandbox-data
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM

for i in 0 1 2; do
  mkdir -p "$root/nats$i"
  routes=""
  for j in 0 1 2; do [ "$j" = "$i" ] || routes+="nats-route://127.0.0.1:$((6222 + j)),"; done
  cat >"$root/nats$i/nats.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((4222 + i))
jetstream { store_dir: "$root/nats$i/js", max_memory_store: 64MB, max_file_store: 8GB }
cluster { name: dfm, listen: 127.0.0.1:$((6222 + i)), routes: [${routes%,}] }
CONF
  nats-server -c "$root/nats$i/nats.conf" >"$root/nats$i/nats.log" 2>&1 &
  pids+=($!)
done

cat >"$root/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $root/nginx/nginx.pid;
error_log $root/nginx/logs/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $root/nginx/body;
  proxy_temp_path $root/nginx/proxy;
  fastcgi_temp_path $root/nginx/fastcgi;
  uwsgi_temp_path $root/nginx/uwsgi;
  scgi_temp_path $root/nginx/scgi;
  client_max_body_size 1m;
  upstream dfm {
    server 127.0.0.1:8081 max_fails=1 fail_timeout=2s;
    server 127.0.0.1:8082 max_fails=1 fail_timeout=2s;
    server 127.0.0.1:8083 max_fails=1 fail_timeout=2s;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:8080;
    keepalive_requests 10000000;  # vendors keep their connections
    location / {
      proxy_pass http://dfm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      # A webhook tried again on another node is de-duplicated by its id.
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_connect_timeout 1s;
      proxy_read_timeout 3s;  # dfm answers in milliseconds: longer is a node that hangs
    }
  }
}
CONF
/usr/sbin/nginx -c "$root/nginx/nginx.conf" -p "$root/nginx" &
pids+=($!)

# A development key for cluster.state_key (connector state and page
# sessions shared by the nodes); production makes its own
# (`openssl rand -hex 32`, docs/scale-out.md).
dev_state_key=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
for i in 1 2 3; do
  DFM_SERVER_LISTEN=127.0.0.1:$((8080 + i)) DFM_SERVER_ADMIN_LISTEN=127.0.0.1:$((9180 + i)) \
  DFM_STORAGE_DATA_DIR="$root/node$i" \
  DFM_CLUSTER_ENABLED=true DFM_CLUSTER_NODE_ID=node$i \
  DFM_CLUSTER_NATS_URLS=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224 \
  DFM_CLUSTER_STATE_KEY="${DFM_CLUSTER_STATE_KEY:-$dev_state_key}" \
    ./build/release/app/dfm serve --config etc/dev.toml >"$root/node$i.log" 2>&1 &
  pids+=($!)
  echo $! >"$root/node$i.pid"
done

# The sandboxes post to nginx, as vendors post to the public address.
bash scripts/sandboxes.sh &
pids+=($!)
echo "cluster up: http://127.0.0.1:8080/v1/health (nodes' logs: $root/node<N>.log)"
wait
