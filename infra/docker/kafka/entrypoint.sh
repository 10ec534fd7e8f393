#!/bin/sh
# KAFKA_* variables become server.properties (KAFKA_FOO_BAR -> foo.bar; the JVM's own
# KAFKA_HEAP_OPTS and KAFKA_OPTS excepted), the storage is formatted once (-g: a formatted
# directory is left alone), then the broker runs in the foreground.
set -euf  # -f: the class path below is a Java wildcard, not a shell glob
props=/etc/kafka/server.properties
env | grep '^KAFKA_' | grep -v -e '^KAFKA_HEAP_OPTS=' -e '^KAFKA_OPTS=' | while IFS='=' read -r key value; do
    echo "$(echo "${key#KAFKA_}" | tr 'A-Z_' 'a-z.')=$value"
done >"$props"
java="java ${KAFKA_HEAP_OPTS:--Xmx1g} ${KAFKA_OPTS:-} -Dlog4j2.configurationFile=/etc/kafka/log4j2.xml -cp /opt/kafka/libs/*"
# shellcheck disable=SC2086 # word splitting of the JVM options is meant
$java kafka.tools.StorageTool format -c "$props" -t "${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" -g >/dev/null
# shellcheck disable=SC2086
exec $java kafka.Kafka "$props"
