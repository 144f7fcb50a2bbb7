"""The ASGI layers around the routes, outermost first: the hot path of `POST /predict`
(`fast_predict`), the metrics and access log of every request (`instrument`, written by
`access_log`), what no route should see (`guard`), the cap on event streams (`streams`),
and the body size limit (`body_size`)."""
