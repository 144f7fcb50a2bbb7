"""OpenAPI request bodies for the routes that parse their own (server.ingest): /fit, /predict
and /evaluate read JSON with orjson and numpy and files with pyarrow, so FastAPI sees no body
parameter; these tell OpenAPI (and Swagger UI) what they accept, from the same pydantic
models that document the contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def _standalone_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, with its $defs inlined so that it stands alone."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


def request_body(model: type[BaseModel], form: type[BaseModel] | None = None) -> dict[str, Any]:
    """The OpenAPI request body of a route that parses its own body (server.ingest): JSON,
    and where a file is accepted, multipart/form-data."""
    content = {"application/json": {"schema": _standalone_schema(model)}}
    if form is not None:
        content["multipart/form-data"] = {"schema": _standalone_schema(form)}
    return {"requestBody": {"required": True, "content": content}}
