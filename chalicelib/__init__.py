"""thumbgen's Lambda code: everything here ships with `chalice deploy`.

Packages, lowest first; each imports only from those before it (tests/unit/test_layout.py):
`imaging` (pixels and rendition rules), `platform` (AWS, settings, logs, auth, S3),
`images` (the image record and its table), `webhooks` (telling the client), `resize`
(making thumbnails from uploads), `api` (the HTTP routes' use cases and the web page).
`service` wires them together once per process; `app.py` is the table of contents.
"""
