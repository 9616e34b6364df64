"""schemathesis's command line, for scripts/schemathesis.sh, with a workaround.

Hypothesis names its strategies by parsing the source file of each lambda with ast.parse, and
caches the tree. On CPython 3.11 a first parse made deep in a call stack can fail with
"AST constructor recursion depth mismatch", which schemathesis reports as a runtime error of
whatever operation it was generating for. Parsing the large generation module once here, at
the top of the stack, fills the cache; the recursion limit is raised for the same reason.
"""

import sys

sys.setrecursionlimit(10_000)

import ast  # noqa: E402
import inspect  # noqa: E402

from hypothesis.internal import lambda_sources  # noqa: E402
from schemathesis.cli import schemathesis  # noqa: E402
from schemathesis.generation.jsonschema import strategy  # noqa: E402

# What Hypothesis's full parse would store (lambda_sources._lambda_description).
lines, _ = inspect.findsource(strategy)
tree = ast.parse("".join(lines))
lambda_sources.AST_LAMBDAS_CACHE[tuple(lines)] = lambda_sources.extract_all_lambdas(tree)

sys.argv[0] = "st"
sys.exit(schemathesis())
