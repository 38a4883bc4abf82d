"""Token providers for test_mint.py, in this process, over loopback TLS.

  OAuthProvider  an OAuth 2.0 token endpoint built on python3-oauthlib's server classes
                 (TokenEndpoint with ClientCredentialsGrant and RefreshTokenGrant,
                 BearerToken): client_credentials for confidential clients (HTTP Basic
                 or client_secret in the form), refresh_token with ROTATING refresh
                 tokens and reuse detection (a refresh token used twice revokes its whole
                 family: every later refresh of it is invalid_grant). It also serves
                 POST /jwt-bearer (RFC 7523: the assertion verified with python3-jwt
                 and the service account's public key) and the GitHub App endpoint
                 POST /app/installations/ID/access_tokens (the App JWT verified with
                 python3-jwt and the App's public key; the requested repositories and
                 permissions recorded), and POST /token-exchange (RFC 8693, by hand:
                 oauthlib has no token-exchange grant; a known subject token and HTTP
                 Basic client authentication).
Every issued access token, every request and every refusal is recorded; tests wait on
those records (conditions with deadlines), never on sleeps.
"""
import base64
import http.server
import json
import os
import ssl
import threading
import time
import urllib.parse

import jwt
from oauthlib.oauth2 import (BearerToken, ClientCredentialsGrant, RefreshTokenGrant,
                             RequestValidator, TokenEndpoint)

TOKEN_URI = "https://auth.example.test/token"     # oauthlib checks the scheme only


class _Validator(RequestValidator):
    """Clients: {client_id: secret or None (public)}; refresh token families."""

    def __init__(self, provider):
        super().__init__()
        self.p = provider

    # --- clients
    def client_authentication_required(self, request, *args, **kwargs):
        cid = self._basic(request)[0] or request.client_id
        return self.p.clients.get(cid) is not None

    @staticmethod
    def _basic(request):
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None, None
        raw = base64.b64decode(auth[6:]).decode()
        cid, _, sec = raw.partition(":")
        return urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(sec)

    def authenticate_client(self, request, *args, **kwargs):
        cid, sec = self._basic(request)
        if cid is None:
            cid, sec = request.client_id, request.client_secret
        if cid not in self.p.clients or self.p.clients[cid] != sec:
            return False
        request.client = type("Client", (), {"client_id": cid})()
        request.client_id = cid
        return True

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        if client_id in self.p.clients and self.p.clients[client_id] is None:
            request.client = type("Client", (), {"client_id": client_id})()
            return True
        return False

    def validate_grant_type(self, client_id, grant_type, client, request, *a, **k):
        return True

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        return ["read"]

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        return True

    # --- refresh tokens: rotation with reuse detection
    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        with self.p.lock:
            fam = self.p.refresh.get(refresh_token)
            if fam is None:
                return False
            if fam in self.p.revoked:
                return False
            if refresh_token in self.p.used:
                self.p.reuses += 1
                self.p.revoked.add(fam)      # reuse: the whole family goes
                return False
            self.p.used.add(refresh_token)
            request.family = fam
            return True

    def get_original_scopes(self, refresh_token, request, *args, **kwargs):
        return ["read"]

    def rotate_refresh_token(self, request):
        return True

    def save_bearer_token(self, token, request, *args, **kwargs):
        with self.p.lock:
            self.p.issued.append((request.client_id, token["access_token"]))
            rt = token.get("refresh_token")
            if rt:
                self.p.refresh[rt] = getattr(request, "family", rt)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _answer(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("content-length",):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_POST(self):
        p = self.server.provider
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        rec = {"path": self.path, "headers": list(self.headers.items()),
               "body": body.decode("latin-1")}
        with p.lock:
            p.requests.append(rec)
        if p.hold is not None:
            p.hold.wait(30)
        if self.path == "/token":
            self._token(p, body)
        elif self.path == "/jwt-bearer":
            self._jwt_bearer(p, body)
        elif self.path == "/token-exchange":
            self._token_exchange(p, body)
        elif self.path.startswith("/app/installations/"):
            self._github(p, body)
        else:
            self._answer(404, '{"error":"not_found"}')

    def _token(self, p, body):
        headers, out, status = p.endpoint.create_token_response(
            TOKEN_URI, http_method="POST", body=body.decode(),
            headers=dict(self.headers.items()))
        self._answer(status, out, headers.items())

    def _jwt_bearer(self, p, body):
        form = dict(urllib.parse.parse_qsl(body.decode()))
        try:
            claims = jwt.decode(form.get("assertion", ""), p.sa_public_key,
                                algorithms=["RS256"], audience=p.sa_audience)
        except jwt.PyJWTError as e:
            with p.lock:
                p.refused.append("jwt-bearer: %s" % e)
            self._answer(400, json.dumps({"error": "invalid_grant",
                                          "error_description": "bad assertion"}))
            return
        tok = "ya29.sa-" + os.urandom(16).hex()
        with p.lock:
            p.assertions.append(claims)
            p.issued.append(("jwt-bearer", tok))
        self._answer(200, json.dumps({"access_token": tok, "token_type": "Bearer",
                                      "expires_in": "3599"}))

    def _token_exchange(self, p, body):
        """RFC 8693: a known subject token, the client authenticated with HTTP Basic."""
        form = dict(urllib.parse.parse_qsl(body.decode()))
        cid, sec = _Validator._basic(self)
        ok = form.get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange" \
            and cid in p.clients and p.clients[cid] == sec
        if not ok or form.get("subject_token") not in p.subjects:
            self._answer(400, json.dumps({"error": "invalid_grant" if ok else
                                          "invalid_client"}))
            return
        tok = "tx-" + os.urandom(16).hex()
        with p.lock:
            p.exchanges.append(form)
            p.issued.append((cid, tok))
        self._answer(200, json.dumps({
            "access_token": tok, "token_type": "N_A", "expires_in": 600,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}))

    def _github(self, p, body):
        auth = self.headers.get("Authorization", "")
        try:
            claims = jwt.decode(auth[7:] if auth.startswith("Bearer ") else "",
                                p.app_public_key, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]})
            now = time.time()
            if str(claims["iss"]) != p.app_id or claims["exp"] - claims["iat"] > 600 or \
                    claims["iat"] > now:
                raise jwt.InvalidTokenError("iss, iat or exp out of GitHub's rules")
        except jwt.PyJWTError as e:
            with p.lock:
                p.refused.append("github: %s" % e)
            self._answer(401, json.dumps({"message": "A JSON web token could not be "
                                          "decoded", "documentation_url": "x"}))
            return
        tok = "ghs_" + os.urandom(18).hex()
        exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        with p.lock:
            p.github.append({"path": self.path, "claims": claims,
                             "request": json.loads(body or b"{}"), "token": tok})
            p.issued.append(("github", tok))
        self._answer(201, json.dumps({"token": tok, "expires_at": exp,
                                      "permissions": {"contents": "read"}}))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, ctx, provider):
        super().__init__(addr, _Handler)
        self.provider = provider
        self.socket = ctx.wrap_socket(self.socket, server_side=True)


class OAuthProvider:
    """The stand-in on host:kernel port with the server context ctx. clients: {id:
    secret or None}; expires_in: {client_id: seconds} (default 3600)."""

    def __init__(self, ctx, clients, host="127.0.0.3", expires_in=None):
        self.lock = threading.Lock()
        self.clients = dict(clients)
        self.expires_in = dict(expires_in or {})
        self.requests, self.issued, self.refused = [], [], []
        self.assertions, self.github, self.exchanges, self.subjects = [], [], [], set()
        self.refresh, self.used, self.revoked, self.reuses = {}, set(), set(), 0
        self.hold = None
        self.sa_public_key = self.sa_audience = None
        self.app_public_key = self.app_id = None
        v = _Validator(self)
        bearer = BearerToken(v, expires_in=lambda request: self.expires_in.get(
            request.client_id, 3600))
        self.endpoint = TokenEndpoint("client_credentials", bearer, {
            "client_credentials": ClientCredentialsGrant(v),
            "refresh_token": RefreshTokenGrant(v)})
        self.server = _Server((host, 0), ctx, self)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def seed_refresh_token(self, token):
        """A refresh token issued out of band (the operator's), its own family."""
        with self.lock:
            self.refresh[token] = token

    def tokens(self, client=None):
        with self.lock:
            return [t for c, t in self.issued if client is None or c == client]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
