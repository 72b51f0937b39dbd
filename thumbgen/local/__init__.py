"""The embedded AWS that `make run` and the tests start: moto server processes
(`embedded_aws`), the stage's resources (`resources`), the API in process (`localapi`),
the event pumps that call the Lambda handlers (`pumps`, `workers`), injected faults and
modelled AWS latency (`faults`, `latency`), all started by `stack` and `runner`.

Never ships: Lambda code is `app.py` and `chalicelib/`.
"""
