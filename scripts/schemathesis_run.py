"""schemathesis's command line, for scripts/schemathesis.sh, with a workaround and a hook.

Hypothesis names its strategies by parsing the source file of each lambda with ast.parse, and
caches the tree. On CPython 3.11 a first parse made deep in a call stack can fail with
"AST constructor recursion depth mismatch", which schemathesis reports as a runtime error of
whatever operation it was generating for. Parsing the large generation module once here, at
the top of the stack, fills the cache; the recursion limit is raised for the same reason.

The document is OpenAPI 3.0, which has no `propertyNames`; where the server constrains the
keys of an object (`meta` refuses keys that are empty or start with `_`, as ChatBotKit does;
dataset search filters take dot paths), the document states the rule as `x-propertyNames`,
which schemathesis does not read. The hook below drops the keys that break such a rule from
the data it generates as valid, so that valid data is valid under the rule too.
"""

import sys

sys.setrecursionlimit(10_000)

import ast  # noqa: E402
import re  # noqa: E402
import inspect  # noqa: E402

from schemathesis import GenerationMode, hook  # noqa: E402
from hypothesis.internal import lambda_sources  # noqa: E402
from schemathesis.cli import schemathesis  # noqa: E402
from schemathesis.generation.jsonschema import strategy  # noqa: E402

# What Hypothesis's full parse would store (lambda_sources._lambda_description).
lines, _ = inspect.findsource(strategy)
tree = ast.parse("".join(lines))
lambda_sources.AST_LAMBDAS_CACHE[tuple(lines)] = lambda_sources.extract_all_lambdas(tree)


def _drop_keys_against_rule(body, schema):
    """Drops the keys of `body` that break an `x-propertyNames` rule of `schema`."""
    if not isinstance(body, dict) or not isinstance(schema, dict):
        return
    rule = schema.get("x-propertyNames")
    if isinstance(rule, dict) and "pattern" in rule:
        pattern = re.compile(rule["pattern"])
        for key in [k for k in body if not pattern.search(k)]:
            del body[key]
    for name, sub in (schema.get("properties") or {}).items():
        _drop_keys_against_rule(body.get(name), sub)


@hook
def map_case(context, case):
    # Only valid data: invalid data may break the rule, or anything else.
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return case
    for body in context.operation.body:
        if body.media_type == case.media_type:
            _drop_keys_against_rule(case.body, body.definition.get("schema"))
    return case


sys.argv[0] = "st"
sys.exit(schemathesis())
