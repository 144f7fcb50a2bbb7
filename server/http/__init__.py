"""The HTTP side: everything that knows about requests and answers, and nothing else. It
owns the routes (`routes/`, one module per resource) and how they are declared with their
access (`routing`), the ASGI layers around them (`middleware/`), tokens (`auth`), the
error answers (`errors`), event streams, CSV answers, the OpenAPI bodies and the docs
pages, and uvicorn's protocol with its timeouts (`protocol`)."""
