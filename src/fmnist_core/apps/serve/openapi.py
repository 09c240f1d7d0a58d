"""The API's description: /predict's OpenAPI schema and the offline /docs page made from it."""

import json

from ...labels import LABELS

_PREDICTION = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": list(LABELS)},
        "index": {"type": "integer", "minimum": 0, "maximum": len(LABELS) - 1},
        "probabilities": {
            "type": "array",
            "items": {"type": "number"},
            "minItems": len(LABELS),
            "maxItems": len(LABELS),
        },
        "name": {
            "type": "string",
            "description": "which image: the file name sent (else its form field's name), or "
            "images[i] for JSON",
        },
        "input": {
            "type": "string",
            "format": "byte",
            "description": "with ?inputs=true: the 28×28 image the model was given, a PNG",
        },
    },
    "required": ["name", "label", "index", "probabilities"],
}
_ERROR = {
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"detail": {"type": "string"}}}
        }
    }
}
PREDICT_OPENAPI = {
    "parameters": [
        {
            "name": "inputs",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean"},
            "description": "also return each image as the model was given it",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                    },
                    "description": "image files, any field names (PNG, JPEG, ...)",
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "byte"},
                            "description": "base64-encoded image files",
                        }
                    },
                    "required": ["images"],
                }
            },
        },
    },
    "responses": {
        "200": {
            "description": "one prediction per image, in the order sent",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"predictions": {"type": "array", "items": _PREDICTION}},
                    }
                }
            },
        },
        **{
            str(code): {"description": text, **_ERROR}
            for code, text in [
                (400, "an image that cannot be read, a bad request"),
                (408, "the body stalled"),
                (413, "over a size, count or pixel limit"),
                (415, "neither multipart/form-data nor application/json"),
                (503, "the server is at its limit of requests"),
            ]
        },
    },
}


def docs_page(openapi: dict) -> str:
    """The API as one plain HTML page, from its OpenAPI description: nothing loaded from
    anywhere (Swagger UI's page needs a CDN)."""
    import html

    def esc(value: object) -> str:
        return html.escape(str(value))

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(openapi['info']['title'])} API</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}pre{background:#f4f4f4;padding:.6rem;overflow:auto}"
        "h2{margin-top:2rem}code{background:#f4f4f4}</style></head><body>",
        f"<h1>{esc(openapi['info']['title'])} {esc(openapi['info']['version'])}</h1>",
        f"<p>{esc(openapi['info'].get('description', ''))} "
        "The OpenAPI description: <a href='openapi.json'>openapi.json</a>.</p>",
    ]
    for path, operations in openapi.get("paths", {}).items():
        for method, operation in operations.items():
            parts.append(f"<h2><code>{esc(method.upper())} {esc(path)}</code></h2>")
            text = operation.get("description") or operation.get("summary") or ""
            parts.append(f"<p>{esc(text)}</p>")
            for parameter in operation.get("parameters", []):
                parts.append(
                    f"<p>Query <code>{esc(parameter['name'])}</code>: "
                    f"{esc(parameter.get('description', ''))}</p>"
                )
            body = operation.get("requestBody", {}).get("content", {})
            for kind, content in body.items():
                schema = json.dumps(content.get("schema", {}), indent=2)
                parts.append(f"<h3>Request: {esc(kind)}</h3><pre>{esc(schema)}</pre>")
            for code, response in operation.get("responses", {}).items():
                parts.append(f"<h3>{esc(code)}: {esc(response.get('description', ''))}</h3>")
                for content in response.get("content", {}).values():
                    schema = json.dumps(content.get("schema", {}), indent=2)
                    parts.append(f"<pre>{esc(schema)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
