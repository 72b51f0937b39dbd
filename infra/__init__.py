"""Deployment of thumbgen to AWS: the CloudFormation stack, the Chalice stage, packaging.

Never deployed itself (only app.py, chalicelib/ and vendor/ ship to Lambda).
"""
