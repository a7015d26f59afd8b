"""Province analytics as a data team reads it: confluent-kafka's Consumer
with the registry-aware AvroDeserializer (the writer schema fetched from
the schema registry by the id in each record's Confluent framing) reads
every record of akm.trade and prints each as one JSON line.

usage: read_trade_confluent.py --brokers B --topic T --registry URL --expect N
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--brokers", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--expect", type=int, required=True)
    a = p.parse_args()
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": a.registry}))
    c = Consumer({
        "bootstrap.servers": a.brokers,
        "group.id": f"analytics-{time.time_ns()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.subscribe([a.topic])
    seen = 0
    deadline = time.time() + 60
    try:
        while seen < a.expect and time.time() < deadline:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            value = m.value()
            assert value[0] == 0, f"not the Confluent framing: {value[:5]!r}"
            row = deserialize(value, SerializationContext(a.topic, MessageField.VALUE))
            row["schemaId"] = int.from_bytes(value[1:5], "big")
            print(json.dumps(row, ensure_ascii=False), flush=True)
            seen += 1
    finally:
        c.close()
    if seen < a.expect:
        print(f"only {seen} of {a.expect} records", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
