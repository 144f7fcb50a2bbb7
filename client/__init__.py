"""A small Python client for the model server, and the demo scripts.

from client import ModelClient, AsyncModelClient, ApiError
"""

from client.async_client import AsyncModelClient
from client.calls import ApiError, Call
from client.sync_client import ModelClient

__all__ = ["ApiError", "AsyncModelClient", "Call", "ModelClient"]
