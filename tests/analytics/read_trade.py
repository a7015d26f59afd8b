#!/usr/bin/env python3
"""Province analytics, as a non-Rust client: read akm.trade with kafka-python
and decode every record with fastavro from the schema file alone.

Records are Avro single-object encoded: C3 01, the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema, then the binary datum.
Prints one JSON object per record; exits non-zero if a record has the wrong
magic or fingerprint, or contains a forbidden string (personal data).
"""
import argparse
import io
import json
import sys

import fastavro
from kafka import KafkaConsumer

EMPTY = 0xC15D213AA4D7A795


def rabin(data: bytes) -> int:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp & 0xFFFFFFFFFFFFFFFF)
    fp = EMPTY
    for b in data:
        fp = (fp >> 8) ^ table[(fp ^ b) & 0xFF]
    return fp


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--forbid", action="append", default=[])
    a = ap.parse_args()

    with open(a.schema, encoding="utf-8") as f:
        schema = fastavro.parse_schema(json.load(f))
    canonical = fastavro.schema.to_parsing_canonical_form(schema)
    fingerprint = rabin(canonical.encode("utf-8")).to_bytes(8, "little")

    consumer = KafkaConsumer(
        a.topic,
        bootstrap_servers=a.brokers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=20000,
    )
    seen = 0
    for rec in consumer:
        raw = rec.value
        if raw[:2] != b"\xc3\x01":
            print(f"bad magic at offset {rec.offset}", file=sys.stderr)
            return 2
        if raw[2:10] != fingerprint:
            print(f"fingerprint {raw[2:10].hex()} is not the schema file's {fingerprint.hex()}", file=sys.stderr)
            return 3
        for secret in a.forbid:
            if secret.encode("utf-8") in raw:
                print(f"personal data on the topic at offset {rec.offset}", file=sys.stderr)
                return 4
        row = fastavro.schemaless_reader(io.BytesIO(raw[10:]), schema)
        print(json.dumps(row, ensure_ascii=False))
        seen += 1
        if seen >= a.expect:
            break
    consumer.close()
    if seen < a.expect:
        print(f"only {seen} of {a.expect} records", file=sys.stderr)
        return 5
    return 0


if __name__ == "__main__":
    sys.exit(main())
