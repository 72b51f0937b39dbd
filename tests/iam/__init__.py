"""Every Lambda function's AWS calls held to its own execution role in infra/thumbgen.yaml.

moto answers every call whatever the policies say, so a call missing from a role would
only show up on AWS, as AccessDenied. Here each call a handler makes under test is
recorded as IAM sees it (action, resource ARN, condition keys) and decided against the
role's statements, resolved to the test's own resource names.

- actions.py: an API call (or presigned URL) -> the IAM requests it needs;
- evaluate.py: IAM's decision for a request against policy statements;
- stack.py: the template's roles and resources, resolved for one stage environment;
- recorder.py: which function made which call;
- plugin.py: the pytest plugin that checks every test.
"""
