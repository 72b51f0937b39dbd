"""Local tooling for thumbgen: the embedded AWS stack, event pumps and CLI.

Nothing here is deployed; Lambda runs app.py and chalicelib/ only.
"""
