#!/usr/bin/python3
"""Parses Prometheus text exposition on standard input with prometheus_client's own parser.

Prints one JSON object: each sample name maps to a list of {"labels", "value", "type"}, where
"type" is its family's type (gauge, counter, histogram, ...). Values NaN, +Inf and -Inf are
written as the strings "NaN", "+Inf" and "-Inf" (JSON has no such numbers). Exits 1 with the
parser's message on standard error when the text does not parse.
"""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def number(value):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def main():
    text = sys.stdin.read()
    samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(
                    {"labels": dict(sample.labels), "value": number(sample.value), "type": family.type})
    except Exception as error:  # the parser raises ValueError and others on bad input
        print(f"parse_metrics: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    json.dump(samples, sys.stdout, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
