#!/bin/sh
# Regenerates the MQTT fuzz seed corpora from the codec's unit-test vectors:
#   tests/fuzz/corpora/mqtt_packet  golden, malformed and edge-case packets
#   tests/fuzz/corpora/mqtt_topic   rows of the topic matching table
# Usage: tools/mqtt_fuzz_corpus.sh [build-dir]   (default: build-mqttcodec)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-mqttcodec}
bin=$build/src/codec/mqtt
pkt=$root/tests/fuzz/corpora/mqtt_packet
top=$root/tests/fuzz/corpora/mqtt_topic
make -C "$build" ep_codec_mqtt_golden_test ep_codec_mqtt_malformed_test \
    ep_codec_mqtt_topic_test >/dev/null
rm -rf "$pkt" "$top"
mkdir -p "$pkt" "$top"
EP_MQTT_CORPUS_DIR=$pkt "$bin/ep_codec_mqtt_golden_test" >/dev/null
EP_MQTT_CORPUS_DIR=$pkt "$bin/ep_codec_mqtt_malformed_test" >/dev/null
EP_MQTT_TOPIC_CORPUS_DIR=$top "$bin/ep_codec_mqtt_topic_test" >/dev/null
echo "mqtt_packet: $(ls "$pkt" | wc -l) seeds, mqtt_topic: $(ls "$top" | wc -l) seeds"
