"""Validates CycloneDX 1.6 JSON documents with cyclonedx-python-lib's strict JSON schema
validator (installed by tests/run.sh into target/validators). Exits 1 naming the first error.

  target/validators/bin/python tests/validate-cyclonedx.py FILE...
"""
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

validator = JsonStrictValidator(SchemaVersion.V1_6)
for path in sys.argv[1:]:
    with open(path) as f:
        error = validator.validate_str(f.read())
    if error:
        print(f"{path}: not valid CycloneDX 1.6: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"{path}: valid CycloneDX 1.6")
