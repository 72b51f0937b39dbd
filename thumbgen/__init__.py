"""Local tooling for thumbgen: the `thumbgen` command and the clients users run.

`client` (ThumbgenClient), `upload`, `receiver`, `token`, `users`, `render` and their
helpers are what a user of a stage runs; `local/` is the embedded stack behind `make run`.
Nothing here is deployed; Lambda runs app.py and chalicelib/ only.
"""
