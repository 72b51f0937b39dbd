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


# `thumbgen token --api-url URL --user NAME`: a deployed stage's user signs in, with no AWS
# credentials, profile or CLI. The stage here: moto's Cognito served on 127.0.0.1 (the
# embedded AWS's server) and an API on 127.0.0.1 serving config.json as the real one does.

import http.server
import json
import socket
import threading

import boto3

from chalicelib.api.webpage import client_config
from chalicelib.platform.auth import JwksCache, TokenVerifier
from chalicelib.platform.config import Settings
from thumbgen import cli
from thumbgen.local.stack import free_port

REGION = "eu-west-1"
PASSWORD = "Correct-Horse-9-Battery"
TEMPORARY = "Temporary-Pass-1-Word"


@pytest.fixture(scope="module")
def cognito_url():
    from thumbgen.local import embedded_aws

    port = free_port()
    server = embedded_aws.make_server("127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def pool(cognito_url):
    """A user pool and app client made as infra/thumbgen.yaml makes them: alice has a
    permanent password, carol still the temporary one she was created with."""
    admin = boto3.client("cognito-idp", endpoint_url=cognito_url, region_name=REGION,
                         aws_access_key_id="admin", aws_secret_access_key="admin")
    pool_id = admin.create_user_pool(PoolName="thumbgen-dev", AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
                                     UsernameConfiguration={"CaseSensitive": False})["UserPool"]["Id"]
    client_id = admin.create_user_pool_client(
        UserPoolId=pool_id, ClientName="thumbgen-dev-api", GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
    for user in ("alice", "carol"):
        admin.admin_create_user(UserPoolId=pool_id, Username=user, TemporaryPassword=TEMPORARY,
                                MessageAction="SUPPRESS")
    admin.admin_set_user_password(UserPoolId=pool_id, Username="alice", Password=PASSWORD, Permanent=True)
    return pool_id, client_id


class _Api(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str]] = {}

    def do_GET(self):
        status, body = self.routes.get(self.path, (404, '{"message": "Missing Authentication Token"}'))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    """serve({path: (status, body)}) -> the base URL of an API on 127.0.0.1 answering them."""
    servers = []

    def serve(routes: dict[str, tuple[int, str]]) -> str:
        handler = type("Api", (_Api,), {"routes": routes})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"
    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def stage_config(pool, endpoint: str | None = None) -> str:
    """GET /config.json of a stage, from the API's own code: a deployed stage's names the
    region's Cognito endpoint; the local stack's its embedded AWS."""
    pool_id, client_id = pool
    env = {"COGNITO_REGION": REGION, "COGNITO_USER_POOL_ID": pool_id, "COGNITO_APP_CLIENT_ID": client_id}
    return json.dumps(client_config(Settings.from_env({**env, **({"AWS_ENDPOINT_URL": endpoint} if endpoint else {})})))


@pytest.fixture
def no_aws_credentials(monkeypatch, tmp_path):
    """No keys, no profile, no config file: what a newcomer without the AWS CLI has (and a
    profile named that does not exist)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
                 "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_COGNITO_IDP", "THUMBGEN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_PROFILE", "not-a-profile")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": pytest.fail("asked for a password"))


def verified_user(token: str, cognito_url: str, pool) -> str:
    """The user the API's own verifier finds in the token (an access token of the pool's app client)."""
    pool_id, client_id = pool
    keys = JwksCache(f"{cognito_url}/{pool_id}/.well-known/jwks.json")
    return TokenVerifier(f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}", client_id, keys).verify(token).username


def test_a_stage_user_gets_the_access_token_the_api_verifies(api, pool, cognito_url, no_aws_credentials,
                                                             monkeypatch, capsys):
    url = api({"/api/config.json": (200, stage_config(pool))})  # a deployed stage's: the region's endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL_COGNITO_IDP", cognito_url)  # which, here, is on 127.0.0.1
    monkeypatch.setenv("THUMBGEN_PASSWORD", PASSWORD)
    assert cli.main(["token", "--api-url", f"{url}/api/", "--user", "alice"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert out == token + "\n" and err.startswith("access token for alice (valid ")
    assert verified_user(token, cognito_url, pool) == "alice"
    assert PASSWORD not in out + err


def test_the_cognito_endpoint_of_a_local_config_is_used_and_the_password_may_be_given_or_typed(
        api, pool, cognito_url, no_aws_credentials, monkeypatch, capsys):
    url = api({"/config.json": (200, stage_config(pool, endpoint=cognito_url))})  # as the local stack's
    assert cli.main(["token", "--api-url", url, "--user", "alice", "--password", PASSWORD]) == 0
    assert verified_user(capsys.readouterr().out.strip(), cognito_url, pool) == "alice"
    prompts = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="": prompts.append(prompt) or PASSWORD)
    assert cli.main(["token", "--api-url", url, "--user", "alice"]) == 0
    assert prompts == ["password for alice: "]
    out, err = capsys.readouterr()
    assert verified_user(out.strip(), cognito_url, pool) == "alice" and PASSWORD not in out + err


def test_a_config_naming_another_cognito_host_is_not_sent_the_password(api, pool, no_aws_credentials, capsys):
    """Only a loopback endpoint (the local stack's) is taken from config.json; any other, the
    region's own: here a lookup of it is refused, as every host beyond 127.0.0.1 is in tests."""
    config = json.loads(stage_config(pool))
    nothing = f"http://127.0.0.2:{free_port()}"
    config["cognito"]["endpoint"] = nothing  # loopback too: taken
    assert cli.main(["token", "--api-url", api({"/config.json": (200, json.dumps(config))}),
                     "--user", "alice", "--password", PASSWORD]) == 2
    assert f"cannot reach Cognito at {nothing}" in capsys.readouterr().err
    config["cognito"]["endpoint"] = "https://cognito.example.com"  # elsewhere: the region's own
    from thumbgen.token import stage_cognito

    url = api({"/config.json": (200, json.dumps(config))})
    assert stage_cognito(url).endpoint is None
    assert cli.main(["token", "--api-url", url, "--user", "alice", "--password", PASSWORD]) == 2
    assert f"cannot reach Cognito at https://cognito-idp.{REGION}.amazonaws.com" in capsys.readouterr().err


@pytest.mark.parametrize("user,password,said", [
    ("alice", "Wrong-Password-1", "Cognito refused 'alice': Incorrect username or password."),
    ("nobody", "Wrong-Password-1", "Cognito refused 'nobody': "),
])
def test_a_wrong_password_or_user_is_said_plainly(api, pool, cognito_url, no_aws_credentials, capsys,
                                                  user, password, said):
    url = api({"/config.json": (200, stage_config(pool, endpoint=cognito_url))})
    assert cli.main(["token", "--api-url", url, "--user", user, "--password", password]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"error: {said}") and "check the user name and the password" in err
    assert password not in err and "Traceback" not in err


def test_a_user_with_a_temporary_password_is_told_how_to_set_a_permanent_one(api, pool, cognito_url,
                                                                             no_aws_credentials, capsys):
    url = api({"/config.json": (200, stage_config(pool, endpoint=cognito_url))})
    assert cli.main(["token", "--api-url", url, "--user", "carol", "--password", TEMPORARY]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "still has the temporary password" in err
    assert (f"aws cognito-idp admin-set-user-password --region {REGION} --user-pool-id {pool[0]} "
            f"--username carol --password \"$PASSWORD\" --permanent") in err
    assert TEMPORARY not in err


def test_an_api_url_that_is_not_a_thumbgen_stage_is_said_so(api, no_aws_credentials, capsys):
    nothing = f"http://127.0.0.1:{free_port()}"
    other = api({"/config.json": (200, '{"name": "another service"}'), "/bad/config.json": (200, "<html>")})
    for url, said in [(nothing, f"cannot reach {nothing}/config.json"),
                      (f"{other}/api", f"{other}/api/config.json answered 404"),
                      (other, f"{other}/config.json names no Cognito region, user pool and app client"),
                      (f"{other}/bad/", f"{other}/bad/config.json names no Cognito region")]:
        assert cli.main(["token", "--api-url", url, "--user", "alice", "--password", PASSWORD]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {said}") and "a thumbgen API URL?" in err, err


def test_no_password_anywhere_is_an_error_not_an_empty_sign_in(api, pool, cognito_url, no_aws_credentials,
                                                               monkeypatch, capsys):
    url = api({"/config.json": (200, stage_config(pool, endpoint=cognito_url))})
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "")
    assert cli.main(["token", "--api-url", url, "--user", "alice"]) == 2
    assert "no password: give --password, set THUMBGEN_PASSWORD" in capsys.readouterr().err


def test_the_arguments_that_go_together(capsys):
    with pytest.raises(SystemExit) as usage:
        cli.main(["token", "--api-url", "http://127.0.0.1:9"])
    assert usage.value.code == 2 and "--api-url needs --user NAME" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli.main(["token", "--password", "x"])
    assert usage.value.code == 2 and "--password goes with --api-url" in capsys.readouterr().err


def test_an_app_client_the_pool_does_not_have_is_named_with_the_endpoint(api, pool, cognito_url,
                                                                          no_aws_credentials, capsys):
    config = json.loads(stage_config(pool, endpoint=cognito_url))
    config["cognito"]["clientId"] = "no-such-client"
    url = api({"/config.json": (200, json.dumps(config))})
    assert cli.main(["token", "--api-url", url, "--user", "alice", "--password", PASSWORD]) == 2
    assert f"error: Cognito at {cognito_url} refused the sign-in (ResourceNotFoundException" in capsys.readouterr().err
