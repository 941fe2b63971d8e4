"""Validates a SARIF file against the SARIF 2.1.0 JSON schema with the `jsonschema`
package. Prints the number of results; exits 1 with the schema errors on stderr.

usage: check_sarif.py SCHEMA.json LOG.sarif
"""
import json
import sys

import jsonschema


def main(schema_path, log_path):
    schema = json.load(open(schema_path))
    log = json.load(open(log_path))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    errors = sorted(cls(schema).iter_errors(log), key=lambda e: list(e.path))
    for e in errors[:20]:
        print(f"{'/'.join(map(str, e.path))}: {e.message[:300]}", file=sys.stderr)
    if errors:
        sys.exit(1)
    print(json.dumps({"validator": cls.__name__, "results": len(log["runs"][0]["results"])}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
