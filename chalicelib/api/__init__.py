"""The HTTP API behind `app.py`'s routes: its use cases (`use_cases`), request parsing
(`upload_request`), owner-bound cursors (`paging`), the per-user request rate
(`rate_limit`), Chalice's own refusals in our error shape (`framework_errors`) and the
upload page with its static files (`webpage`, `web/`).
"""
