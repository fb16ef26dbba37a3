"""The admin API: one module per resource, each with its own ``RouteTableDef``."""

from __future__ import annotations

from aiohttp import web

from roles.app.api import audit, campaigns, control, limits, runtime, users

ROUTE_TABLES: tuple[web.RouteTableDef, ...] = (
    users.routes,
    campaigns.routes,
    runtime.routes,
    control.routes,
    audit.routes,
    limits.routes,
)
