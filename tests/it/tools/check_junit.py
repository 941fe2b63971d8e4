"""Reads a tenantgate JUnit file with junitparser, an independent reader, and checks what
the CI test viewers need. Prints one JSON object (what it read); exits 1 with the
problems on stderr.

usage: check_junit.py JUNIT.xml REPORT.json

- GitLab: keeps only the first of several test cases with the same (classname, name),
  and shows the classname as the suite: pairs are unique; a check's base result and all
  its attack variants share one classname.
- Buildkite: every test case has a non-empty classname and name.
- Jenkins: a test suite's counts match its test cases; failures and errors are told
  apart, each with a message and a type.
- GitHub test reporters (e.g. dorny/test-reporter, mikepenz/action-junit-report):
  read the counts on <testsuite> and the message of each failure.
"""
import json
import sys

import junitparser
from junitparser import Error, Failure, JUnitXml, Skipped


def main(junit_path, json_path):
    report = json.load(open(json_path))
    xml = JUnitXml.fromfile(junit_path)
    problems = []
    pairs = set()
    cases = {}
    counts = {"fail": 0, "error": 0, "skip": 0, "total": 0}
    props = {}
    for suite in xml:
        for p in suite.properties():
            props.setdefault(p.name, p.value)
        n = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for case in suite:
            n["tests"] += 1
            if not case.classname or not case.name:
                problems.append(f"test case without classname or name: {case.classname!r} {case.name!r}")
            pair = (case.classname, case.name)
            if pair in pairs:
                problems.append(f"duplicate (classname, name): {pair}")
            pairs.add(pair)
            cases[case.name] = case.classname
            for r in case.result:
                if isinstance(r, Failure):
                    n["failures"] += 1
                elif isinstance(r, Error):
                    n["errors"] += 1
                elif isinstance(r, Skipped):
                    n["skipped"] += 1
                if isinstance(r, (Failure, Error)) and (not r.message or not r.type):
                    problems.append(f"{pair}: a {type(r).__name__} without message or type")
        for k in n:
            if getattr(suite, k) != n[k]:
                problems.append(f"suite {suite.name}: {k}={getattr(suite, k)} but {n[k]} test cases")
        counts["fail"] += n["failures"]
        counts["error"] += n["errors"]
        counts["skip"] += n["skipped"]
        counts["total"] += n["tests"]

    c = report["counts"]
    if counts["fail"] != c["fail"] or counts["error"] != c["error"] or counts["skip"] != c["skip"]:
        problems.append(f"JUnit counts {counts} differ from the JSON report's {c}")
    # One classname per check: every result of a check (base and variants) shares it.
    by_check = {}
    for r in report["results"]:
        if r["layer"] in ("http", "attack"):
            name = r["check"] if r["variant"] == "base" else f'{r["check"]} [{r["variant"]}]'
            key = r["id"].split("/")[0]
            by_check.setdefault(key, set()).add(cases.get(name))
    for key, classes in by_check.items():
        if len(classes) != 1 or None in classes:
            problems.append(f"check {key} is spread over classnames {classes}")
    for p in ("tenantgate.suite_sha256", "tenantgate.target", "tenantgate.tool_version"):
        if p not in props:
            problems.append(f"property {p} missing")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print(json.dumps({
        "reader": f"junitparser {junitparser.version}",
        "pairs": sorted(f"{a}\t{b}" for a, b in pairs),
        "counts": counts,
        "properties": props,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:3])
