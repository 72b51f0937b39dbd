"""What every function stands on: lazy boto3 clients, settings, JSON logs, the API's error
value, bearer-token verification and the S3 adapter.

Knows nothing of images' life cycle; the packages above use it to reach AWS the same way
on Lambda and on the embedded stack.
"""
