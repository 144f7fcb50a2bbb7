"""The routes, one module per resource; each route translates a request into one call of
the service (server.service) and raises its errors, never builds an error answer."""

from server.http.routes import (
    automl,
    models,
    monitoring,
    predictions,
    status,
    training,
    versions,
)
from server.http.routing import RouteTable

TABLES: tuple[RouteTable, ...] = (
    training.table,
    predictions.table,
    models.table,
    versions.table,
    automl.table,
    monitoring.table,
    status.table,
)
