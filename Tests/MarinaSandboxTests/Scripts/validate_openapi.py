#!/usr/bin/python3
"""Validates a response body against the OpenAPI document of the controller's HTTP API.

    validate_openapi.py SPEC METHOD PATH_TEMPLATE STATUS < body
        e.g. validate_openapi.py docs/openapi.yaml GET /api/v1/status 200 < status.json
        Exits 0 silently when the body (JSON) matches the schema the document gives for that
        operation and status; otherwise prints each violation with its JSON path and exits 1.
    validate_openapi.py SPEC --check
        Checks the document alone and lists its operations.

Either way the document is checked first: every component schema (and every response and
request schema) must be a valid JSON Schema 2020-12, and every $ref must resolve. A document
that fails exits 2; a usage error exits 64.

Debian's python3-jsonschema (4.10) and python3-yaml; dates (`format: date-time`) are checked
by a checker of our own (RFC 3339), as jsonschema checks them only when an optional package
is installed.
"""

import datetime
import json
import re
import sys

import yaml
from jsonschema import Draft202012Validator, FormatChecker, RefResolver
from jsonschema.exceptions import RefResolutionError

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
USAGE = "usage: validate_openapi.py SPEC METHOD PATH_TEMPLATE STATUS < body\n       validate_openapi.py SPEC --check"

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

format_checker = FormatChecker()


@format_checker.checks("date-time", raises=ValueError)
def is_date_time(value):
    """RFC 3339 date-time (ISO 8601 with a time zone), with a real calendar date and time."""
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        raise ValueError("not an RFC 3339 date-time")
    text = value.upper().replace("Z", "+00:00")
    # Python before 3.11 takes 3 or 6 fractional digits only: keep the date and time part.
    text = re.sub(r"\.\d+", "", text)
    datetime.datetime.fromisoformat(text)
    return True


class SpecProblem(Exception):
    pass


def load(path):
    try:
        with open(path, encoding="utf-8") as handle:
            spec = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise SpecProblem(f"{path}: cannot be read: {error}")
    if not isinstance(spec, dict):
        raise SpecProblem(f"{path}: is not a YAML mapping")
    if not str(spec.get("openapi", "")).startswith("3.1"):
        raise SpecProblem(f"{path}: openapi must be 3.1.x (is {spec.get('openapi')!r})")
    return spec


def pointer(parts):
    """A JSON pointer from its parts, escaped."""
    return "#/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def walk(node, parts=()):
    """Every (parts, mapping) in the document, depth first."""
    if isinstance(node, dict):
        yield parts, node
        for key, value in node.items():
            yield from walk(value, parts + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, parts + (index,))


def operations(spec):
    """(METHOD, path, operation) for every operation, in the document's order."""
    for path, item in (spec.get("paths") or {}).items():
        for method in METHODS:
            if isinstance(item, dict) and method in item:
                yield method.upper(), path, item[method]


def media_schemas(spec):
    """(where, schema) for every schema of a request or response body, and every parameter's."""
    for method, path, operation in operations(spec):
        where = f"{method} {path}"
        body = operation.get("requestBody")
        if isinstance(body, dict):
            for media, content in (body.get("content") or {}).items():
                if "schema" in content:
                    yield f"{where} request {media}", content["schema"]
        for status, response in (operation.get("responses") or {}).items():
            if isinstance(response, dict):
                for media, content in (response.get("content") or {}).items():
                    if "schema" in content:
                        yield f"{where} {status} {media}", content["schema"]
        for parameter in operation.get("parameters") or []:
            if isinstance(parameter, dict) and "schema" in parameter:
                yield f"{where} parameter {parameter.get('name')}", parameter["schema"]


def check(spec):
    """Every problem of the document itself, as lines; empty when it is sound."""
    problems = []
    resolver = RefResolver.from_schema(spec)
    for parts, node in walk(spec):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                problems.append(f"{pointer(parts)}: $ref {ref} is not local to the document")
                continue
            try:
                resolver.resolve(ref)
            except RefResolutionError as error:
                problems.append(f"{pointer(parts)}: $ref {ref} does not resolve ({error})")
    for name, schema in ((spec.get("components") or {}).get("schemas") or {}).items():
        problems += schema_problems(f"components/schemas/{name}", schema)
    for where, schema in media_schemas(spec):
        problems += schema_problems(where, schema)
    for method, path, operation in operations(spec):
        responses = operation.get("responses")
        if not isinstance(responses, dict) or not responses:
            problems.append(f"{method} {path}: documents no response")
        for name in re.findall(r"\{([^}]+)\}", path):
            declared = [p for p in resolved_parameters(operation, resolver) if p.get("in") == "path" and p.get("name") == name]
            if not declared:
                problems.append(f"{method} {path}: path parameter {name} is not declared")
    return problems


def schema_problems(where, schema):
    """Why `schema` is not a valid JSON Schema 2020-12 (each error at its place in it)."""
    if not isinstance(schema, (dict, bool)):
        return [f"{where}: a schema must be a mapping (is {type(schema).__name__})"]
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    return [
        f"{where}: not a valid JSON Schema 2020-12 at {json_path(error)}: {error.message}"
        for error in sorted(meta.iter_errors(schema), key=lambda e: list(map(str, e.absolute_path)))
    ]


def resolved_parameters(operation, resolver):
    for parameter in operation.get("parameters") or []:
        if isinstance(parameter, dict) and "$ref" in parameter:
            try:
                _, parameter = resolver.resolve(parameter["$ref"])
            except RefResolutionError:
                continue
        if isinstance(parameter, dict):
            yield parameter


def response_schema(spec, method, path, status):
    """The schema of the JSON body the document gives for the operation and status."""
    item = (spec.get("paths") or {}).get(path)
    if item is None:
        known = ", ".join(spec.get("paths") or {})
        raise SpecProblem(f"the document has no path {path} (it has: {known})")
    operation = item.get(method.lower())
    if operation is None:
        known = ", ".join(m.upper() for m in METHODS if m in item)
        raise SpecProblem(f"the document has no {method} {path} (only {known})")
    responses = operation.get("responses") or {}
    response = responses.get(str(status))
    if response is None:
        response = responses.get(f"{str(status)[0]}XX") or responses.get("default")
    if response is None:
        raise SpecProblem(f"{method} {path} does not document status {status} (it documents {', '.join(map(str, responses))})")
    if "$ref" in response:
        _, response = RefResolver.from_schema(spec).resolve(response["$ref"])
    content = response.get("content") or {}
    for media, entry in content.items():
        if media.split(";")[0].strip() == "application/json" and "schema" in entry:
            return entry["schema"]
    raise SpecProblem(f"{method} {path} {status} documents no application/json body (media: {', '.join(content) or 'none'})")


def json_path(error):
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def violations(spec, schema, body):
    """Every way `body` breaks `schema`, deepest first within each branch, as lines."""
    validator = Draft202012Validator(schema, resolver=RefResolver.from_schema(spec), format_checker=format_checker)
    lines = []
    for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
        lines.append(f"{json_path(error)}: {error.message}")
        for sub in sorted(error.context or [], key=lambda e: list(map(str, e.absolute_path))):
            lines.append(f"    {json_path(sub)}: {sub.message}")
    return lines


def main(argv):
    if len(argv) == 3 and argv[2] == "--check":
        mode = "check"
    elif len(argv) == 5 and argv[4].isdigit():
        mode = "validate"
    else:
        print(USAGE, file=sys.stderr)
        return 64
    # The body first, whatever happens next, so that a caller writing it never blocks on a full pipe.
    text = sys.stdin.read() if mode == "validate" else ""
    try:
        spec = load(argv[1])
        problems = check(spec)
        if problems:
            print(f"{argv[1]}: {len(problems)} problem(s) in the document:", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            return 2
        if mode == "check":
            listed = list(operations(spec))
            for method, path, operation in listed:
                statuses = " ".join(str(status) for status in (operation.get("responses") or {}))
                print(f"{method:6} {path}  {statuses}")
            print(f"{argv[1]}: valid, {len(listed)} operations")
            return 0
        _, method, path, status = argv[1:]
        schema = response_schema(spec, method.upper(), path, status)
    except SpecProblem as problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        print(f"the body is not JSON ({error}): {text[:120]!r}", file=sys.stderr)
        return 1
    lines = violations(spec, schema, body)
    if lines:
        print(f"{method.upper()} {path} {status}: the body does not match the document:", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
