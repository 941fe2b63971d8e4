"""Validates suites (already converted to JSON) against tenantgate's suite schema with the
`jsonschema` package. Every GOOD file must validate, every BAD file must not. Prints
{"validator": ..., "good": N, "bad": M}; exits 1 with the problems on stderr.

usage: check_suite_schema.py SCHEMA.json GOOD.json... -- BAD.json...
"""
import json
import sys

import jsonschema


def main(schema_path, files):
    schema = json.load(open(schema_path))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    v = cls(schema)
    sep = files.index("--") if "--" in files else len(files)
    good, bad = files[:sep], files[sep + 1:]
    failed = False
    for path in good:
        for e in sorted(v.iter_errors(json.load(open(path))), key=lambda e: list(e.path))[:10]:
            print(f"{path}: {'/'.join(map(str, e.path))}: {e.message[:300]}", file=sys.stderr)
            failed = True
    for path in bad:
        if v.is_valid(json.load(open(path))):
            print(f"{path}: accepted, but the suite is wrong", file=sys.stderr)
            failed = True
    if failed:
        sys.exit(1)
    print(json.dumps({"validator": cls.__name__, "good": len(good), "bad": len(bad)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
