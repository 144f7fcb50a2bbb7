"""The HTTP side: everything that knows about requests and answers, and nothing else.

routes.py      the routes: each translates a request into one ModelService call
routing.py     RouteTable: routes declared with their access, installed per app
openapi_bodies.py  the OpenAPI bodies of the routes that parse their own
csv_response.py    predictions as CSV for `Accept: text/csv`
auth.py        bearer tokens (MANAGEMENT_TOKEN, INFERENCE_TOKEN) as FastAPI security
instrument.py  per request: Prometheus counters and the access log line
docs.py        ReDoc from shipped assets, fetching nothing elsewhere (Swagger UI comes
               with fastapi-offline)
errors.py      exceptions to JSON answers with the right status
limits.py      the body size limit (413) as ASGI middleware
"""
