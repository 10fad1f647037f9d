#!/usr/bin/env bash
# Build the local Kafka image for the e2e cluster and print its tag (last line of stdout): one KRaft
# node (broker + controller) from the same hash-verified Apache Kafka jars tools/kafka/fetch-kafka.sh
# fetches from Maven Central, on a debootstrapped Debian bookworm with the JRE from apt. It runs as uid
# 10001 with a read-only root filesystem; all state lives under /var/lib/kafka (mount a volume there).
# On a machine with internet the e2e run uses Strimzi instead; no Kafka image can be pulled here.
#
# Container environment:
#   KAFKA_ADVERTISED_HOST   host name clients are given (default: the pod's IP)
#   KAFKA_NUM_PARTITIONS    default partitions of new topics (default 6)
#   KAFKA_HEAP              JVM heap (default 512m)
#   KAFKA_TLS_DIR           lock the node down (tools/kafka/kraft-tls.properties): TLS only, clients
#                           authenticated by certificate on 9092 or SCRAM-SHA-512 on 9094, ACLs; the
#                           directory holds broker.pem (key and certificate, for the advertised host and
#                           127.0.0.1) and ca.crt (the CA client certificates must be signed by)
#   KAFKA_SUPER_USERS       with KAFKA_TLS_DIR: principals allowed everything (User:a;User:b)
set -euo pipefail
PACKAGES=openjdk-17-jre-headless,ca-certificates
me="kafka-image"
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=scripts/docker/lib.sh
source "$repo/scripts/docker/lib.sh"
mkdir -p "$docker_cache"

libs="$("$repo/tools/kafka/fetch-kafka.sh" | tail -n 1)"
kafka_version="$KAFKA_VERSION"
# The node's settings and logging are the local stack's too (harness/localstack/kafka_broker.py).
shared=("$repo/tools/kafka/kraft-node.properties" "$repo/tools/kafka/kraft-tls.properties"
  "$repo/tools/kafka/log4j2.properties")
recipe="$(cat "${BASH_SOURCE[0]}" "$repo/tools/kafka/jars.sha256" "${shared[@]}" | sha256sum | cut -c1-8)"
tag="distsum-e2e/kafka:$kafka_version-$recipe"
if present "$tag"; then
  echo "$tag"
  exit 0
fi

jre_tag="$(debian_image jre "$PACKAGES" --change 'ENV LANG=C.UTF-8')"

ctx="$(mktemp -d "$docker_cache/kafka/context.XXXXXX")"
on_exit rm -rf -- "$ctx"
cp -r "$libs" "$ctx/libs"
cat >"$ctx/kafka-kraft" <<'SCRIPT'
#!/bin/sh
# Start a single KRaft node, formatting its storage on first start.
set -eu
data=/var/lib/kafka
host="${KAFKA_ADVERTISED_HOST:-$(hostname -i | cut -d' ' -f1)}"
mkdir -p "$data/logs" "$data/kraft"
sed -e 's/@node_id@/1/' -e "s/@voters@/1@127.0.0.1:9093/" -e 's/@listen_host@//' \
  -e "s/@advertised_host@/$host/" -e 's/@port@/9092/g' -e 's/@controller_port@/9093/' \
  -e "s|@log_dirs@|$data/kraft|" -e "s/@partitions@/${KAFKA_NUM_PARTITIONS:-6}/" \
  -e 's/@replication@/1/' -e 's/@min_insync@/1/' \
  /opt/kafka/kraft-node.properties >"$data/server.properties"
if [ -n "${KAFKA_TLS_DIR:-}" ]; then
  sed -e 's/@listen_host@//g' -e "s/@advertised_host@/$host/g" -e 's/@port@/9092/g' \
    -e 's/@controller_port@/9093/g' -e 's/@scram_port@/9094/g' -e "s|@keystore@|$KAFKA_TLS_DIR/broker.pem|" \
    -e "s|@truststore@|$KAFKA_TLS_DIR/ca.crt|" -e "s/@super_users@/${KAFKA_SUPER_USERS:?with KAFKA_TLS_DIR}/" \
    /opt/kafka/kraft-tls.properties >>"$data/server.properties"
fi
if grep -q '@[a-z_]*@' "$data/server.properties"; then
  echo "kafka-kraft: unfilled fields in server.properties:" >&2
  grep '@[a-z_]*@' "$data/server.properties" >&2
  exit 1
fi
set -- -Xmx"${KAFKA_HEAP:-512m}" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
  -Dkafka.logs.dir="$data/logs" -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties -cp '/opt/kafka/libs/*'
if [ ! -f "$data/kraft/meta.properties" ]; then
  # Kafka's Uuid text form: URL-safe base64 of 16 bytes, unpadded, not starting with '-'.
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' | sed 's/^-/A/')"
  java "$@" kafka.tools.StorageTool format --config "$data/server.properties" --cluster-id="$cluster_id"
fi
exec java "$@" kafka.Kafka "$data/server.properties"
SCRIPT
cp "${shared[@]}" "$ctx/"
chmod 0755 "$ctx/kafka-kraft"
chmod -R a+rX "$ctx"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $jre_tag
COPY libs/ /opt/kafka/libs/
COPY log4j2.properties kraft-node.properties kraft-tls.properties /opt/kafka/
COPY kafka-kraft /usr/local/bin/
RUN mkdir -p /var/lib/kafka && chown 10001:10001 /var/lib/kafka
USER 10001:10001
VOLUME /var/lib/kafka
EXPOSE 9092 9094
ENTRYPOINT ["/usr/local/bin/kafka-kraft"]
LABEL org.opencontainers.image.description="Apache Kafka $kafka_version, one KRaft node, made by offline/kafka-image.sh"
DOCKERFILE
log "building $tag"
build_log="$docker_cache/kafka/build.log"
docker build -t "$tag" "$ctx" >"$build_log" 2>&1 || die "docker build of $tag failed; see $build_log"
echo "$tag"
