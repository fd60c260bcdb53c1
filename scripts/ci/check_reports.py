#!/usr/bin/env python3
"""Validates toolcfg --json outputs against schemas/report.schema.json (JSON Schema 2020-12).

Reads from standard input a JSON array of {"kind": NAME or null, "output": TEXT}: each output
must be exactly one JSON object, valid against the whole schema and, when NAME is given, against
its $defs/NAME (so a rotate report cannot pass as another command's). Prints every problem and
exits 1 if there is any. Uses the jsonschema package (scripts/bootstrap.sh installs it): a
well-kept validator of the whole draft, where a hand-written one would cover only what we use.
"""
import json
import pathlib
import sys

import jsonschema

SCHEMA_PATH = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "report.schema.json"


def main() -> int:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    whole = jsonschema.Draft202012Validator(schema)
    problems = []
    cases = json.load(sys.stdin)
    for index, case in enumerate(cases):
        label = f"#{index} ({case.get('kind') or 'any'})"
        try:
            report = json.loads(case["output"])
        except json.JSONDecodeError as error:
            problems.append(f"{label}: not one JSON document: {error}")
            continue
        if not isinstance(report, dict):
            problems.append(f"{label}: not a JSON object")
            continue
        validators = [("schema", whole)]
        if case.get("kind"):
            if case["kind"] not in schema["$defs"]:
                problems.append(f"{label}: no $defs/{case['kind']} in the schema")
                continue
            part = {"$ref": f"#/$defs/{case['kind']}", "$defs": schema["$defs"]}
            validators.append((f"$defs/{case['kind']}", jsonschema.Draft202012Validator(part)))
        for name, validator in validators:
            for error in validator.iter_errors(report):
                where = "/".join(str(part) for part in error.absolute_path) or "(top)"
                problems.append(f"{label} against {name}: {where}: {error.message}")
    for problem in problems:
        print(problem)
    print(f"{len(cases)} output(s) checked, {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
