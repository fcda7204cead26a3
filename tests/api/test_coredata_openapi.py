"""The core-data port's OpenAPI document (``coredata-openapi.yaml``, derived from EdgeX
core-data's): it loads in schemathesis with every operation well formed, and each operation
keeps EdgeX's own operation (same path, method and request body) where EdgeX has one, so the
document cannot drift from the wire contract. That it names exactly the served routes is
checked with the role table (tests/security/test_role_table.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml

from edgemeta.api.app import API_BASE, coredata_openapi_document

DOC: dict[str, Any] = yaml.safe_load(coredata_openapi_document())
# The EdgeX specs sit in the project's shared folder, beside the clone (not in the repository).
_SPEC = Path("spec") / "edgex" / "core-data.yaml"
EDGEX = next(
    (
        base / _SPEC
        for base in (Path(__file__).resolve().parents[3] / "shared", Path("/work/shared"))
        if (base / _SPEC).exists()
    ),
    None,
)
METHODS = {"get", "put", "post", "patch", "delete"}


def test_document_loads_and_every_operation_is_well_formed() -> None:
    assert DOC["servers"][0]["url"] == API_BASE
    schema = schemathesis.openapi.from_dict(DOC)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(1 for item in DOC["paths"].values() for m in item if m in METHODS)
    # EdgeX's operations carry no operationId; edgemeta's additions do, each its own.
    ids = [
        op.definition.raw["operationId"] for op in operations if "operationId" in op.definition.raw
    ]
    assert len(set(ids)) == len(ids)
    for op in operations:
        assert any(code.startswith("2") for code in op.definition.raw["responses"]), op.label


def test_edgex_operations_are_kept_as_edgex_defines_them() -> None:
    if EDGEX is None:
        pytest.skip("the EdgeX core-data spec (shared/spec/edgex) is not beside this clone")
    edgex = yaml.safe_load(EDGEX.read_text())
    kept = 0
    for path, item in DOC["paths"].items():
        for method in METHODS & item.keys():
            theirs = edgex["paths"].get(path, {}).get(method)
            if theirs is None:
                continue
            # edgemeta adds only who may call it (``security: []`` on the open ones).
            ours = {k: v for k, v in item[method].items() if k != "security"}
            assert ours == theirs, (method, path)
            kept += 1
    assert kept >= 20
