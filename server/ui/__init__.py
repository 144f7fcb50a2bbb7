"""The dashboard at /ui: one server-rendered page (Jinja2) with plain ES modules that keep it
live from one event stream per page (`hub`: one snapshot a second, made once for every
open page), and act through the service's own API with the tab's bearer token."""
