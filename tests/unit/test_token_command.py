"""`thumbgen token` says how long the token it prints is valid, from the token itself."""
from __future__ import annotations

import time

import jwt
import pytest

from thumbgen.token import print_token
from thumbgen.users import validity


def token_valid_for(seconds: int) -> str:
    return jwt.encode({"sub": "u", "exp": int(time.time()) + seconds}, "k" * 32, algorithm="HS256")


@pytest.mark.parametrize("seconds,said", [(3600, "1 h"), (900, "15 min"), (300, "5 min"), (7200, "2 h"), (-5, "0 min")])
def test_the_validity_is_read_from_the_token(seconds, said):
    assert validity(token_valid_for(seconds)) == said


def test_thumbgen_token_prints_the_real_validity_then_the_token_alone(capsys):
    token = token_valid_for(900)  # what a deployed stage's pool hands out
    assert print_token("alice", fetch=lambda user: token) == 0
    out, err = capsys.readouterr()
    assert out == token + "\n"
    assert err == "access token for alice (valid 15 min):\n"
