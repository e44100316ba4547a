#!/usr/bin/env python3
"""Deterministic generator for the airlock-redact labeled secret corpus.

    python3 crates/redact/tests/gen_corpus.py            # writes crates/redact/tests/corpus/
    python3 crates/redact/tests/gen_corpus.py --out DIR --seed N --per-rule K

Stdlib only, fixed seed: the same arguments always give byte-identical output.
Every secret written here is random and FAKE; shapes (and checksums, where a
format has one) are valid so that shape checks can be tested.

Output:
  corpus/<kind>/...            source/config/log files with planted secrets and lookalikes
  corpus/encoded/...           small set of one-level encoded secrets (base64 / url / json)
  corpus/labels.jsonl          one JSON object per labeled secret:
      {"file": "relative/path", "rule": "rule-id", "secret": "exact substring",
       "encoding": "plain"|"base64"|"url"|"json", "line": 1-based line where the secret starts}
      encoded labels also carry "decoded": the underlying secret.
  corpus/README.md

Everything not labeled is a negative (lookalikes included).

Checksums: GitHub classic/oauth/app/refresh tokens (ghp_/gho_/ghu_/ghs_/ghr_) and npm_
tokens are prefix + 30 random base62 chars + base62(CRC32(those 30 chars)) left-padded
with '0' to 6 chars, base62 alphabet 0-9A-Za-z (value 0 = '0', 10 = 'A', 36 = 'a').
"""
import argparse
import base64
import binascii
import json
import os
import random
import shutil
import string
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "corpus")
SEED = 20240917

B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"
A2Z27 = string.ascii_uppercase + "234567"

RULES = [
    "aws-access-key-id", "aws-secret-access-key", "gcp-service-account", "gcp-api-key",
    "azure-storage-key", "azure-client-secret", "github-pat", "github-fine-grained-pat",
    "github-oauth", "github-app-token", "github-refresh-token", "gitlab-pat", "slack-token",
    "slack-webhook", "stripe-key", "twilio-api-key", "sendgrid-api-key", "openai-api-key",
    "anthropic-api-key", "huggingface-token", "npm-token", "pypi-token", "dockerhub-pat",
    "jwt", "private-key", "database-url", "generic-secret", "dotenv-secret",
]


# ----------------------------------------------------------------------------------------
# secret shapes
# ----------------------------------------------------------------------------------------
class Gen:
    def __init__(self, rng):
        self.r = rng
        self.seen = set()

    def s(self, alphabet, n):
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def uniq(self, f):
        while True:
            v = f()
            if v not in self.seen and not _looks_placeholder(v):
                self.seen.add(v)
                return v

    # -- helpers
    def b62_checksum(self, body):
        n = binascii.crc32(body.encode()) & 0xFFFFFFFF
        out = ""
        while n:
            n, d = divmod(n, 62)
            out = B62[d] + out
        return out.rjust(6, "0")

    def checksummed(self, prefix):
        body = self.s(ALNUM, 30)
        return prefix + body + self.b62_checksum(body)

    # -- per rule
    def aws_access_key_id(self):
        return self.uniq(lambda: self.r.choice(["AKIA", "AKIA", "AKIA", "ASIA"]) + self.s(A2Z27, 16))

    def aws_secret(self, need_special=False):
        def f():
            v = self.s(B64, 40)
            if need_special and "/" not in v and "+" not in v:
                i = self.r.randrange(5, 35)
                v = v[:i] + self.r.choice("/+") + v[i + 1:]
            return v
        return self.uniq(f)

    def gcp_api_key(self):
        return self.uniq(lambda: "AIza" + self.s(B64URL, 35))

    def azure_storage_key(self):
        return self.uniq(lambda: base64.b64encode(bytes(self.r.randrange(256) for _ in range(64))).decode())

    def azure_client_secret(self):
        a = ALNUM + "_~."
        return self.uniq(lambda: self.s(a, 3) + self.r.choice(string.digits) + "Q~"
                         + self.s(a + "-", self.r.choice([34, 34, 34, 31, 32, 33])))

    def github_pat(self):
        return self.uniq(lambda: self.checksummed("ghp_"))

    def github_fine_grained(self):
        return self.uniq(lambda: "github_pat_" + "11" + self.s(string.ascii_uppercase + string.digits, 20)
                         + "_" + self.s(ALNUM, 59))

    def github_oauth(self):
        return self.uniq(lambda: self.checksummed("gho_"))

    def github_app(self):
        return self.uniq(lambda: self.checksummed(self.r.choice(["ghu_", "ghs_", "ghs_"])))

    def github_refresh(self):
        return self.uniq(lambda: self.checksummed("ghr_"))

    def gitlab_pat(self):
        return self.uniq(lambda: "glpat-" + self.s(ALNUM + "-_", 20))

    def slack_token(self):
        d = string.digits

        def f():
            k = self.r.choice(["xoxb", "xoxb", "xoxp", "xoxp", "xoxa", "xoxr", "xoxs"])
            if k == "xoxb":
                return "xoxb-%s-%s-%s" % (self.s(d, self.r.choice([11, 12, 13])), self.s(d, 13), self.s(ALNUM, 24))
            if k in ("xoxp", "xoxs"):
                return "%s-%s-%s-%s-%s" % (k, self.s(d, 11), self.s(d, 11), self.s(d, 13), self.s(HEX, 32 if k == "xoxp" else 64))
            if k == "xoxa":
                return "xoxa-2-%s-%s-%s-%s" % (self.s(d, 12), self.s(d, 12), self.s(d, 13), self.s(HEX, 64))
            return "xoxr-%s-%s-%s" % (self.s(d, 12), self.s(d, 13), self.s(ALNUM, 24))
        return self.uniq(f)

    def slack_webhook(self):
        up = string.ascii_uppercase + string.digits
        return self.uniq(lambda: "https://hooks.slack.com/services/T%s/B%s/%s" % (
            self.s(up, self.r.choice([8, 9, 10])), self.s(up, self.r.choice([8, 9, 10])), self.s(ALNUM, 24)))

    def stripe_key(self):
        return self.uniq(lambda: self.r.choice(["sk_live_", "sk_live_", "rk_live_", "sk_test_"])
                         + self.s(ALNUM, self.r.choice([24, 34, 99, 99])))

    def twilio_key(self):
        return self.uniq(lambda: "SK" + self.s(HEX, 32))

    def sendgrid(self):
        return self.uniq(lambda: "SG." + self.s(B64URL, 22) + "." + self.s(B64URL, 43))

    def openai(self):
        def f():
            k = self.r.choice(["proj", "proj", "proj", "svcacct", "legacy"])
            if k == "legacy":
                return "sk-" + self.s(ALNUM, 20) + "T3BlbkFJ" + self.s(ALNUM, 20)
            if k == "svcacct":
                return "sk-svcacct-" + self.s(B64URL, 74) + "T3BlbkFJ" + self.s(B64URL, 74)
            return "sk-proj-" + self.s(B64URL, 74) + "T3BlbkFJ" + self.s(B64URL, 74)
        return self.uniq(f)

    def anthropic(self):
        return self.uniq(lambda: "sk-ant-api03-" + self.s(B64URL, 93) + "AA")

    def huggingface(self):
        return self.uniq(lambda: "hf_" + self.s(string.ascii_letters, 34))

    def npm(self):
        return self.uniq(lambda: self.checksummed("npm_"))

    def pypi(self):
        return self.uniq(lambda: "pypi-AgEIcHlwaS5vcmc" + "CJ" + self.s(B64URL, self.r.randrange(60, 180)))

    def dockerhub(self):
        return self.uniq(lambda: "dckr_pat_" + self.s(B64URL, 27))

    def jwt(self):
        def b64u(b):
            return base64.urlsafe_b64encode(b).decode().rstrip("=")

        def f():
            alg = self.r.choice(["HS256", "HS256", "HS256"])
            hdr = self.r.choice([{"alg": alg, "typ": "JWT"}, {"alg": alg}, {"typ": "JWT", "alg": alg}])
            iat = self.r.randrange(1600000000, 1760000000)
            pl = {"sub": str(self.r.randrange(10 ** 6, 10 ** 9)), "iat": iat, "exp": iat + self.r.choice([900, 3600, 86400])}
            if self.r.random() < 0.6:
                pl["name"] = self.r.choice(["Alice Martin", "bob", "svc-deploy", "Chen Wei", "ops-bot"])
            if self.r.random() < 0.5:
                pl["role"] = self.r.choice(["admin", "user", "service", "readonly"])
            if self.r.random() < 0.4:
                pl["iss"] = self.r.choice(["https://auth.internal.acme.io", "billing-api", "accounts"])
            h = json.dumps(hdr, separators=(",", ":")).encode()
            p = json.dumps(pl, separators=(",", ":")).encode()
            return b64u(h) + "." + b64u(p) + "." + b64u(bytes(self.r.randrange(256) for _ in range(32)))
        return self.uniq(f)

    def password(self, lo=14, hi=32, url_safe=False):
        extra = "-_.~" if url_safe else "-_.!%*+=^"

        def f():
            n = self.r.randrange(lo, hi + 1)
            v = self.s(ALNUM, 1)
            for _ in range(n - 1):
                v += self.r.choice(extra) if self.r.random() < 0.08 else self.r.choice(ALNUM)
            # make sure it is high-entropy-ish: at least one digit, one upper, one lower
            if not (any(c.isdigit() for c in v) and any(c.isupper() for c in v) and any(c.islower() for c in v)):
                return ""
            return v

        return self.uniq(lambda: f() or self.s(string.digits, 2) + "x" * 40)

    # -- PEM
    def _pem_body(self, der_prefix, nbytes, width=64):
        raw = der_prefix + bytes(self.r.randrange(256) for _ in range(nbytes))
        b = base64.b64encode(raw).decode()
        return "\n".join(b[i:i + width] for i in range(0, len(b), width))

    def private_key(self, kind=None):
        kind = kind or self.r.choice(["RSA", "RSA", "EC", "OPENSSH", "OPENSSH", "PKCS8", "ENC", "PGP", "RSA-ENC"])
        if kind == "RSA":
            return self.uniq(lambda: "-----BEGIN RSA PRIVATE KEY-----\n" + self._pem_body(bytes.fromhex("308204a40201000282010100"), 1180)
                             + "\n-----END RSA PRIVATE KEY-----")
        if kind == "RSA-ENC":
            iv = self.s("0123456789ABCDEF", 32)
            return self.uniq(lambda: "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC," + iv + "\n\n"
                             + self._pem_body(b"", 1200) + "\n-----END RSA PRIVATE KEY-----")
        if kind == "EC":
            return self.uniq(lambda: "-----BEGIN EC PRIVATE KEY-----\n" + self._pem_body(bytes.fromhex("307702010104"), 113)
                             + "\n-----END EC PRIVATE KEY-----")
        if kind == "OPENSSH":
            return self.uniq(lambda: "-----BEGIN OPENSSH PRIVATE KEY-----\n"
                             + self._pem_body(b"openssh-key-v1\x00\x00\x00\x00\x04none\x00\x00\x00\x04none", self.r.choice([360, 2560]), 70)
                             + "\n-----END OPENSSH PRIVATE KEY-----")
        if kind == "PKCS8":
            return self.uniq(lambda: "-----BEGIN PRIVATE KEY-----\n"
                             + self._pem_body(bytes.fromhex("308204bd020100300d06092a864886f70d0101010500048204a7"), 1190)
                             + "\n-----END PRIVATE KEY-----")
        if kind == "ENC":
            return self.uniq(lambda: "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
                             + self._pem_body(bytes.fromhex("308205"), 1300)
                             + "\n-----END ENCRYPTED PRIVATE KEY-----")
        # PGP armored secret key, with a real CRC-24 armor checksum
        raw = bytes([0x95, 0x03, 0xC6]) + bytes(self.r.randrange(256) for _ in range(900))
        b = base64.b64encode(raw).decode()
        crc = _crc24(raw)
        ck = base64.b64encode(crc.to_bytes(3, "big")).decode()
        return self.uniq(lambda: "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + "\n".join(b[i:i + 64] for i in range(0, len(b), 64))
                         + "\n=" + ck + "\n-----END PGP PRIVATE KEY BLOCK-----")

    def gcp_pem_escaped(self):
        pem = self.private_key("PKCS8")
        return pem.replace("\n", "\\n")


def _crc24(data):
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


_PLACEHOLDER_WORDS = ("example", "dummy", "placeholder", "changeme", "xxxxxx", "test1234", "password", "secret")


def _looks_placeholder(v):
    lv = v.lower()
    return any(w in lv for w in _PLACEHOLDER_WORDS)


# rule id -> generator method name
SHAPE = {
    "aws-access-key-id": "aws_access_key_id", "aws-secret-access-key": "aws_secret",
    "gcp-api-key": "gcp_api_key", "azure-storage-key": "azure_storage_key",
    "azure-client-secret": "azure_client_secret", "github-pat": "github_pat",
    "github-fine-grained-pat": "github_fine_grained", "github-oauth": "github_oauth",
    "github-app-token": "github_app", "github-refresh-token": "github_refresh", "gitlab-pat": "gitlab_pat",
    "slack-token": "slack_token", "slack-webhook": "slack_webhook", "stripe-key": "stripe_key",
    "twilio-api-key": "twilio_key", "sendgrid-api-key": "sendgrid", "openai-api-key": "openai",
    "anthropic-api-key": "anthropic", "huggingface-token": "huggingface", "npm-token": "npm",
    "pypi-token": "pypi", "dockerhub-pat": "dockerhub", "jwt": "jwt", "private-key": "private_key",
    "generic-secret": "password", "dotenv-secret": "password",
}

# key names used near each rule's secret (snake_case canonical; styled per language)
KEYS = {
    "aws-access-key-id": ["aws_access_key_id", "access_key_id", "aws_access_key", "access_key"],
    "aws-secret-access-key": ["aws_secret_access_key", "aws_secret_key", "secret_access_key", "aws_secret"],
    "gcp-api-key": ["google_api_key", "gcp_api_key", "maps_api_key", "firebase_api_key", "youtube_key"],
    "azure-storage-key": ["azure_storage_connection_string", "storage_connection_string", "azure_storage"],
    "azure-client-secret": ["azure_client_secret", "client_secret", "aad_client_secret", "arm_client_secret"],
    "github-pat": ["github_token", "gh_token", "github_pat", "token"],
    "github-fine-grained-pat": ["github_token", "gh_token", "github_pat"],
    "github-oauth": ["github_oauth_token", "oauth_token", "gh_oauth"],
    "github-app-token": ["github_app_token", "installation_token", "gh_token"],
    "github-refresh-token": ["github_refresh_token", "refresh_token"],
    "gitlab-pat": ["gitlab_token", "gl_token", "ci_job_token", "gitlab_pat"],
    "slack-token": ["slack_token", "slack_bot_token", "slack_api_token", "bot_token"],
    "slack-webhook": ["slack_webhook_url", "webhook_url", "slack_hook", "alerts_webhook"],
    "stripe-key": ["stripe_secret_key", "stripe_api_key", "stripe_key", "payments_key"],
    "twilio-api-key": ["twilio_api_key", "twilio_key_sid", "twilio_api_key_sid"],
    "sendgrid-api-key": ["sendgrid_api_key", "sendgrid_key", "mail_api_key"],
    "openai-api-key": ["openai_api_key", "openai_key", "llm_api_key"],
    "anthropic-api-key": ["anthropic_api_key", "claude_api_key", "anthropic_key"],
    "huggingface-token": ["hf_token", "huggingface_token", "hugging_face_hub_token"],
    "npm-token": ["npm_token", "npm_auth_token", "node_auth_token"],
    "pypi-token": ["pypi_token", "pypi_api_token", "twine_password"],
    "dockerhub-pat": ["docker_password", "dockerhub_token", "docker_hub_pat"],
    "jwt": ["access_token", "id_token", "auth_token", "session_token", "jwt"],
    "generic-secret": ["password", "db_password", "api_key", "client_secret", "secret", "auth_token",
                       "api_secret", "secret_key", "signing_key", "passwd", "encryption_key", "webhook_secret",
                       "admin_password", "private_token", "app_secret", "smtp_password", "master_key"],
    "dotenv-secret": ["secret_key", "api_key", "app_secret", "jwt_secret", "session_secret", "db_password",
                      "redis_password", "smtp_pass", "admin_pwd", "auth_token", "encryption_key", "private_token",
                      "credentials_key", "mail_password", "cookie_secret", "internal_api_token"],
}

DB_SCHEMES = [("postgres", 5432), ("postgresql", 5432), ("mysql", 3306), ("mongodb+srv", None),
              ("redis", 6379), ("rediss", 6380), ("amqp", 5672), ("mssql", 1433)]
HOSTS = ["db.internal", "prod-db-1.c8x2kq.us-east-1.rds.amazonaws.com", "10.0.3.17", "pg.acme-corp.net",
         "cluster0.a1b2c.mongodb.net", "cache.prod.svc.cluster.local", "mq.internal.example.org", "sql-01.corp.lan"]
USERS = ["app", "admin", "billing_svc", "postgres", "root", "deploy", "reporting", "etl_user", "api"]


# ----------------------------------------------------------------------------------------
# key styling
# ----------------------------------------------------------------------------------------
def upper(k):
    return k.upper()


def camel(k):
    parts = k.split("_")
    return parts[0] + "".join(p.capitalize() for p in parts[1:])


def pascal(k):
    return "".join(p.capitalize() for p in k.split("_"))


def kebab(k):
    return k.replace("_", "-")


# ----------------------------------------------------------------------------------------
# lookalikes (negatives)
# ----------------------------------------------------------------------------------------
class Look:
    def __init__(self, g):
        self.g = g
        self.r = g.r

    def uuid(self):
        h = self.g.s(HEX, 32)
        return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], self.r.choice("89ab"), h[17:20], h[20:32])

    def sha1(self):
        return self.g.s(HEX, 40)

    def sha256(self):
        return self.g.s(HEX, 64)

    def sri(self):
        return "sha512-" + base64.b64encode(bytes(self.r.randrange(256) for _ in range(64))).decode()

    def png_data_uri(self):
        raw = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + bytes(self.r.randrange(256) for _ in range(self.r.randrange(90, 300)))
        return "data:image/png;base64," + base64.b64encode(raw).decode()

    def asset(self):
        return self.r.choice(["main", "vendor", "app", "chunk-vendors", "runtime", "polyfills", "styles"]) + "." + self.g.s(HEX, self.r.choice([8, 16, 20])) + self.r.choice([".js", ".css", ".js.map", ".woff2"])

    def bad_checksum_ghp(self):
        tok = self.g.github_pat()
        last = tok[-1]
        return tok[:-1] + ("A" if last != "A" else "B")

    def placeholder_token(self):
        # provider-shaped strings that are obviously not live
        return self.r.choice([
            "ghp_" + "x" * 36, "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "sk_live_" + "x" * 24,
            "sk_test_EXAMPLEKEY0000000000000000", "xoxb-your-bot-token-here", "glpat-xxxxxxxxxxxxxxxxxxxx",
            "AIzaSyEXAMPLE-EXAMPLE-EXAMPLE-EXAMPLE0", "sk-proj-EXAMPLE" + "0" * 40,
            "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "npm_" + "0" * 36, "dckr_pat_EXAMPLE_EXAMPLE_EXAMPLE",
            "SG.xxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "sk-ant-api03-" + "X" * 93 + "AA", "pypi-AgEIcHlwaS5vcmcEXAMPLE",
            "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        ])

    def placeholder_value(self):
        return self.r.choice(["your_api_key_here", "changeme", "CHANGEME", "<token>", "<your-password>", "${TOKEN}",
                              "${DB_PASSWORD}", "{{ secrets.API_TOKEN }}", "xxxxxxxxxxxxxxxx", "dummy", "placeholder",
                              "REPLACE_ME", "********", "example-secret-do-not-use", "test", "password", "secret",
                              "TODO", "none", "${{ secrets.NPM_TOKEN }}", "%(DB_PASS)s", "{{ .Values.apiKey }}"])

    def env_ref(self, lang, key):
        K = upper(key)
        return {
            "py": self.r.choice(['os.environ["%s"]' % K, 'os.getenv("%s")' % K, 'os.environ.get("%s", "")' % K, 'settings.%s' % K]),
            "js": self.r.choice(["process.env.%s" % K, 'process.env["%s"]' % K, "config.get('%s')" % camel(key)]),
            "ts": self.r.choice(["process.env.%s ?? ''" % K, "process.env.%s!" % K]),
            "sh": '"${%s}"' % K,
            "go": 'os.Getenv("%s")' % K, "rs": 'std::env::var("%s")?' % K,
            "java": 'System.getenv("%s")' % K, "rb": "ENV['%s']" % K, "php": "getenv('%s')" % K,
        }[lang]


# ----------------------------------------------------------------------------------------
# corpus builder
# ----------------------------------------------------------------------------------------
class Corpus:
    def __init__(self, out, seed):
        self.out = out
        self.r = random.Random(seed)
        self.g = Gen(self.r)
        self.look = Look(self.g)
        self.files = {}        # rel path -> content
        self.labels = []       # dicts
        self.lookalikes = 0
        self.used_names = set()

    # -- value generation ------------------------------------------------------------
    def secret(self, rule):
        if rule == "database-url":
            scheme, port = self.r.choice(DB_SCHEMES)
            pw = self.g.password(12, 28, url_safe=True)
            host = self.r.choice(HOSTS)
            hp = host if port is None or scheme == "mongodb+srv" else "%s:%d" % (host, port)
            db = self.r.choice(["app", "billing", "prod", "analytics", "0", "orders", "vhost1"])
            url = "%s://%s:%s@%s/%s" % (scheme, self.r.choice(USERS), pw, hp, db)
            if scheme.startswith("mongodb"):
                url += "?retryWrites=true&w=majority"
            return pw, url
        if rule == "gcp-service-account":
            return self.g.gcp_pem_escaped(), None
        return getattr(self.g, SHAPE[rule])(), None

    def name(self, stem, ext, sub):
        for i in range(1000):
            n = "%s/%s%s" % (sub, stem if i == 0 else "%s_%d" % (stem, i), ext)
            if n not in self.used_names:
                self.used_names.add(n)
                return n
        raise RuntimeError(stem)

    def add_file(self, rel, content, labels):
        """labels: list of (rule, secret, encoding, extra dict)."""
        assert rel not in self.files, rel
        spans = []
        for rule, sec, enc, extra in labels:
            cnt = content.count(sec)
            assert cnt == 1, "secret must occur exactly once in %s (%d): %r" % (rel, cnt, sec[:60])
            i = content.index(sec)
            for a, b in spans:
                assert i + len(sec) <= a or i >= b, "overlapping labels in %s" % rel
            spans.append((i, i + len(sec)))
            d = {"file": rel, "rule": rule, "secret": sec, "encoding": enc, "line": content.count("\n", 0, i) + 1}
            d.update(extra)
            self.labels.append(d)
        self.files[rel] = content

    def write(self):
        if os.path.isdir(self.out):
            shutil.rmtree(self.out)
        os.makedirs(self.out)
        for rel, content in sorted(self.files.items()):
            p = os.path.join(self.out, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8", newline="\n") as f:
                f.write(content)
        self.labels.sort(key=lambda d: (d["file"], d["line"], d["rule"]))
        with open(os.path.join(self.out, "labels.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for d in self.labels:
                f.write(json.dumps(d, sort_keys=False) + "\n")


# ----------------------------------------------------------------------------------------
# per-language line renderers.  Each returns a list of lines for one (key, value) pair in a
# context; the value appears verbatim.  `ctx` picks the context family.
# ----------------------------------------------------------------------------------------
COMMENT = {"py": "#", "rb": "#", "sh": "#", "yaml": "#", "toml": "#", "ini": ";", "env": "#", "tf": "#",
           "docker": "#", "js": "//", "ts": "//", "go": "//", "rs": "//", "java": "//", "php": "//"}

CONTEXTS = ["assign", "assign", "assign", "comment", "header", "url", "cli", "concat", "dict"]


def render(r, lang, key, value, ctx, rule):
    """One or more lines that contain value verbatim."""
    K, c, P = upper(key), camel(key), pascal(key)
    if ctx == "comment":
        cm = COMMENT.get(lang, "#")
        return [r.choice(["%s TODO: rotate %s (was %s)" % (cm, key, value),
                          "%s old %s: %s" % (cm, key.replace("_", " "), value),
                          "%s %s=%s  # temporary, remove before merge" % (cm, K, value) if cm == "#" else "%s %s=%s" % (cm, K, value)])]
    if ctx == "header":
        hv = ("Bearer " if rule != "github-pat" or r.random() < 0.5 else "token ") + value
        return {
            "py": ['headers = {"Authorization": "%s", "Accept": "application/json"}' % hv],
            "js": ["const headers = { Authorization: '%s', 'Content-Type': 'application/json' };" % hv],
            "ts": ["const headers: Record<string, string> = { Authorization: \"%s\" };" % hv],
            "go": ['req.Header.Set("Authorization", "%s")' % hv],
            "rs": ['    .header("Authorization", "%s")' % hv],
            "java": ['conn.setRequestProperty("Authorization", "%s");' % hv],
            "rb": ["req['Authorization'] = '%s'" % hv],
            "php": ["curl_setopt($ch, CURLOPT_HTTPHEADER, ['Authorization: %s']);" % hv],
            "sh": ['curl -sS -H "Authorization: %s" https://api.internal.acme.io/v2/status' % hv],
        }.get(lang, ["Authorization: %s" % hv])
    if ctx == "url":
        q = r.choice(["api_key", "key", "token", "access_token", "auth"])
        u = "https://api.%s/v1/%s?%s=%s&limit=50" % (r.choice(["acme.io", "partner.example.net", "metrics.internal"]),
                                                        r.choice(["search", "events", "export"]), q, value)
        return {
            "py": ['resp = requests.get("%s", timeout=10)' % u],
            "js": ["const res = await fetch('%s');" % u], "ts": ["const res = await fetch(`%s`);" % u],
            "go": ['resp, err := http.Get("%s")' % u], "rs": ['let resp = reqwest::get("%s").await?;' % u],
            "java": ['URL url = new URL("%s");' % u], "rb": ["res = Net::HTTP.get(URI('%s'))" % u],
            "php": ["$res = file_get_contents('%s');" % u], "sh": ["curl -fsSL '%s' -o out.json" % u],
        }.get(lang, ["url: %s" % u])
    if ctx == "cli":
        flag = r.choice(["--token", "--api-key", "--password", "--auth-token", "--secret"])
        cmd = r.choice(["deployctl push", "./bin/sync", "acme-cli login", "python manage.py import_data", "node scripts/release.js"])
        line = "%s %s %s --verbose" % (cmd, flag, value) if r.random() < 0.5 else "%s %s=%s" % (cmd, flag, value)
        return {
            "py": ['subprocess.run("%s", shell=True, check=True)' % line],
            "js": ["execSync('%s');" % line], "ts": ["execSync('%s');" % line],
            "go": ['cmd := exec.Command("sh", "-c", "%s")' % line], "rs": ['let status = Command::new("sh").arg("-c").arg("%s").status()?;' % line],
            "java": ['Process p = Runtime.getRuntime().exec("%s");' % line], "rb": ["system('%s')" % line],
            "php": ["exec('%s', $out);" % line], "sh": [line],
        }.get(lang, [line])
    if ctx == "concat":
        return {
            "py": ['%s = "%s" + "/" + region' % (key, value), 'url = base_url + "?%s=%s&v=2"' % (key, value)][r.randrange(2):][:1],
            "js": ["const %s = '%s' + suffix;" % (c, value)], "ts": ["const %s: string = \"%s\" + suffix;" % (c, value)],
            "go": ['%s := "%s" + suffix' % (c, value)], "rs": ['let %s = format!("{}{}", "%s", suffix);' % (key, value)],
            "java": ['String %s = "%s" + suffix;' % (c, value)], "rb": ["%s = '%s' + suffix" % (key, value)],
            "php": ["$%s = '%s' . $suffix;" % (key, value)], "sh": ['%s="%s""${SUFFIX}"' % (K, value)],
        }.get(lang, ["%s: %s" % (key, value)])
    if ctx == "dict":
        return {
            "py": ['CONFIG = {"%s": "%s", "timeout": 30}' % (key, value)],
            "js": ["module.exports = { %s: '%s', retries: 3 };" % (c, value)],
            "ts": ["export const config = { %s: \"%s\", retries: 3 } as const;" % (c, value)],
            "go": ['var cfg = Config{%s: "%s", Timeout: 30}' % (P, value)],
            "rs": ['let cfg = Config { %s: "%s".into(), timeout: 30 };' % (key, value)],
            "java": ['props.put("%s", "%s");' % (key.replace("_", "."), value)],
            "rb": ["config = { %s: '%s', timeout: 30 }" % (key, value)],
            "php": ["    '%s' => '%s'," % (key, value)],
            "sh": ['declare -A CFG=([%s]="%s")' % (key, value)],
        }.get(lang, ["%s: %s" % (key, value)])
    # assign
    return {
        "py": [r.choice(['%s = "%s"' % (K, value), "%s = '%s'" % (key, value), 'self.%s = "%s"' % (key, value),
                         '%s: str = "%s"' % (K, value)])],
        "js": [r.choice(["const %s = '%s';" % (c, value), 'var %s = "%s";' % (K, value), "  %s: '%s'," % (c, value)])],
        "ts": [r.choice(["const %s: string = '%s';" % (c, value), "export const %s = \"%s\";" % (K, value)])],
        "go": [r.choice(['const %s = "%s"' % (c, value), '%s := "%s"' % (c, value), '\t%s: "%s",' % (P, value)])],
        "rs": [r.choice(['const %s: &str = "%s";' % (K, value), 'let %s = "%s";' % (key, value), 'static %s: &str = r"%s";' % (K, value)])],
        "java": [r.choice(['private static final String %s = "%s";' % (K, value), 'String %s = "%s";' % (c, value)])],
        "rb": [r.choice(["%s = '%s'" % (K, value), 'config.%s = "%s"' % (key, value), "  %s: '%s'," % (key, value)])],
        "php": [r.choice(["define('%s', '%s');" % (K, value), "$%s = '%s';" % (c, value), "$config['%s'] = \"%s\";" % (key, value)])],
        "sh": [r.choice(['export %s="%s"' % (K, value), "%s='%s'" % (K, value), "export %s=%s" % (K, value)])],
    }[lang]


LOOK_CTX = ["uuid", "sha1", "sha256", "sri", "png", "asset", "envref", "empty", "null", "call", "annot", "placeholder",
            "placeholder_token", "bad_ghp", "jwt_prose", "pubkey", "dburl_placeholder", "hashvar"]


def render_lookalike(c, lang, kind=None):
    """A negative line (or few) for the language."""
    r, L = c.r, c.look
    kind = kind or r.choice(LOOK_CTX)
    key = r.choice(["api_key", "password", "secret", "token", "auth_token", "client_secret", "db_password", "access_key"])
    cm = COMMENT.get(lang, "#")
    c.lookalikes += 1

    def assign(k, v, quoted=True):
        q = '"%s"' % v if quoted else v
        return {"py": "%s = %s" % (k, q), "js": "const %s = %s;" % (camel(k), q), "ts": "const %s = %s;" % (camel(k), q),
                "go": "%s := %s" % (camel(k), q), "rs": "let %s = %s;" % (k, q), "java": "String %s = %s;" % (camel(k), q),
                "rb": "%s = %s" % (k, q), "php": "$%s = %s;" % (k, q), "sh": "%s=%s" % (upper(k), q)}[lang]

    if kind == "uuid":
        return [assign(r.choice(["request_id", "tenant_id", "client_id", "trace_id", "subscription_id"]), L.uuid())]
    if kind == "sha1":
        return [assign(r.choice(["commit", "git_sha", "rev", "parent_commit"]), L.sha1())]
    if kind == "sha256":
        return [assign(r.choice(["sha256", "checksum", "digest", "content_hash", "token_hash"]), L.sha256())]
    if kind == "sri":
        return [assign("integrity", L.sri())]
    if kind == "png":
        return [assign(r.choice(["logo", "icon_data", "placeholder_img"]), L.png_data_uri())]
    if kind == "asset":
        return [assign(r.choice(["bundle_path", "asset", "stylesheet"]), "/static/" + L.asset())]
    if kind == "envref":
        if lang == "sh":
            return ['%s="${%s}"' % (upper(key), upper(key))]
        v = L.env_ref(lang, key)
        return [assign(key, v, quoted=False)]
    if kind == "empty":
        return [assign(key, "")]
    if kind == "null":
        nv = {"py": "None", "js": "null", "ts": "null", "go": "nil", "rs": "None", "java": "null", "rb": "nil", "php": "null", "sh": ""}[lang]
        return [assign(key, nv, quoted=False)]
    if kind == "call":
        fn = r.choice(["get_password()", "vault.read('secret/app')", "load_secret(name)", "kms.decrypt(blob)", "prompt_for_token()"])
        if lang == "sh":
            return ['%s="$(vault kv get -field=value secret/app)"' % upper(key)]
        return [assign(key, fn, quoted=False)]
    if kind == "annot":
        return {"py": r.choice([["class Credentials(BaseModel):", "    username: str", "    %s: str" % key],
                                ["def login(username: str, %s: Optional[str] = None) -> bool:" % key, "    return check(username, %s)" % key]]),
                "ts": ["  %s?: string;" % camel(key)], "js": ["/** @param {string} %s */" % camel(key)],
                "go": ["\t%s string `json:\"%s\"`" % (pascal(key), key)], "rs": ["    pub %s: Option<String>," % key],
                "java": ["private String %s;" % camel(key)], "rb": ["attr_accessor :%s" % key],
                "php": ["private ?string $%s = null;" % camel(key)], "sh": ['read -rsp "Enter %s: " %s' % (key, upper(key))]}[lang]
    if kind == "placeholder":
        return [assign(key, L.placeholder_value())]
    if kind == "placeholder_token":
        return [assign(key, L.placeholder_token())]
    if kind == "bad_ghp":
        return ["%s fixture: token with an invalid checksum, must not be reported" % cm, assign("fake_token", L.bad_checksum_ghp())]
    if kind == "jwt_prose":
        return [r.choice(["%s JWTs look like eyJhbGciOi...<payload>.<signature>; never log them" % cm,
                          "%s header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256" % cm,
                          "%s see https://jwt.io for <header>.<payload>.<signature>" % cm])]
    if kind == "pubkey":
        k = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + c.g.s(B64, 340) + " deploy@ci"
        return [assign("authorized_key", k)]
    if kind == "dburl_placeholder":
        return [assign("database_url", r.choice(["postgres://postgres:postgres@localhost:5432/test",
                                                 "postgres://user:password@localhost/app", "redis://localhost:6379/0",
                                                 "mysql://root:${MYSQL_ROOT_PASSWORD}@db:3306/app", "mongodb://localhost:27017",
                                                 "postgresql://app:<password>@db.internal:5432/app", "amqp://guest:guest@localhost:5672/"]))]
    return [assign(r.choice(["password_hash", "hashed_token"]), "$2b$12$" + c.g.s(ALNUM + "./", 53))]


# filler snippets per language --------------------------------------------------------------
FILLER = {
    "py": [
        "import os\nimport json\nimport logging\nfrom typing import Optional\n\nlog = logging.getLogger(__name__)\n",
        "def retry(fn, attempts=3):\n    for i in range(attempts):\n        try:\n            return fn()\n        except ConnectionError as e:\n            log.warning(\"attempt %d failed: %s\", i, e)\n    raise RuntimeError(\"gave up\")\n",
        "class Client:\n    def __init__(self, base_url, timeout=30):\n        self.base_url = base_url.rstrip(\"/\")\n        self.timeout = timeout\n\n    def get(self, path, **params):\n        return requests.get(self.base_url + path, params=params, timeout=self.timeout).json()\n",
        "def chunks(xs, n):\n    for i in range(0, len(xs), n):\n        yield xs[i:i + n]\n",
        "if __name__ == \"__main__\":\n    logging.basicConfig(level=logging.INFO)\n    main()\n",
    ],
    "js": [
        "'use strict';\nconst path = require('path');\nconst fs = require('fs');\n",
        "async function withRetry(fn, n = 3) {\n  for (let i = 0; i < n; i++) {\n    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }\n  }\n  throw new Error('gave up');\n}\n",
        "function slugify(s) {\n  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/(^-|-$)/g, '');\n}\n",
        "app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));\n",
    ],
    "ts": [
        "import { readFileSync } from 'node:fs';\nimport type { Request, Response } from 'express';\n",
        "export interface User {\n  id: string;\n  email: string;\n  createdAt: Date;\n}\n",
        "export function assertNever(x: never): never {\n  throw new Error(`unexpected: ${JSON.stringify(x)}`);\n}\n",
    ],
    "go": [
        "package main\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n\t\"os\"\n\t\"time\"\n)\n",
        "func withTimeout(d time.Duration) *http.Client {\n\treturn &http.Client{Timeout: d}\n}\n",
        "func must(err error) {\n\tif err != nil {\n\t\tfmt.Fprintln(os.Stderr, err)\n\t\tos.Exit(1)\n\t}\n}\n",
    ],
    "rs": [
        "use std::collections::HashMap;\nuse std::time::Duration;\n",
        "fn backoff(attempt: u32) -> Duration {\n    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))\n}\n",
        "#[derive(Debug, Clone)]\npub struct Config {\n    pub endpoint: String,\n    pub timeout: u64,\n}\n",
    ],
    "java": [
        "package com.acme.billing;\n\nimport java.net.URL;\nimport java.util.Properties;\n",
        "public int retries() {\n    return Integer.parseInt(props.getProperty(\"retries\", \"3\"));\n}\n",
        "@Override\npublic String toString() {\n    return \"Client{endpoint=\" + endpoint + \"}\";\n}\n",
    ],
    "rb": [
        "require 'net/http'\nrequire 'json'\n",
        "def with_retries(n = 3)\n  yield\nrescue StandardError => e\n  n -= 1\n  retry if n.positive?\n  raise e\nend\n",
        "Rails.application.configure do\n  config.cache_classes = true\n  config.eager_load = true\nend\n",
    ],
    "php": [
        "<?php\n\nnamespace App\\Services;\n\nuse GuzzleHttp\\Client;\n",
        "function env_or(string $k, $default = null) {\n    $v = getenv($k);\n    return $v === false ? $default : $v;\n}\n",
    ],
    "sh": [
        "#!/usr/bin/env bash\nset -euo pipefail\n\nROOT=\"$(cd \"$(dirname \"$0\")/..\" && pwd)\"\n",
        "log() { printf '%s %s\\n' \"$(date -u +%FT%TZ)\" \"$*\" >&2; }\n",
        "for svc in api worker scheduler; do\n  log \"restarting $svc\"\n  systemctl restart \"acme-$svc\"\ndone\n",
    ],
}

EXT = {"py": ".py", "js": ".js", "ts": ".ts", "go": ".go", "rs": ".rs", "java": ".java", "rb": ".rb", "php": ".php", "sh": ".sh"}
STEMS = {
    "py": ["settings", "config", "client", "deploy", "sync_job", "conftest", "notify", "uploader", "tasks", "app"],
    "js": ["config", "server", "index", "upload", "webpack.config", "notify", "db", "release"],
    "ts": ["config", "client", "env", "api", "worker", "handler"],
    "go": ["main", "config", "client", "notifier", "storage"],
    "rs": ["config", "client", "main", "upload"],
    "java": ["AppConfig", "BillingClient", "Mailer", "StorageService"],
    "rb": ["production", "secrets", "deploy", "mailer", "client"],
    "php": ["config", "database", "services", "mail", "Payment"],
    "sh": ["deploy", "backup", "bootstrap", "release", "sync", "ci"],
}
SUBDIR = {"py": "python", "js": "javascript", "ts": "typescript", "go": "go", "rs": "rust", "java": "java",
          "rb": "ruby", "php": "php", "sh": "shell"}


def lang_file(c, lang, items):
    """Compose a source file; items = list of (rule, value, ctx, key)."""
    r = c.r
    blocks = []
    fillers = FILLER[lang]
    blocks.append(fillers[0].split("\n"))
    labels = []
    body = []
    for rule, val, ctx, key in items:
        body.append(render(r, lang, key, val, ctx, rule))
        labels.append((rule, val, "plain", {}))
    for _ in range(r.randrange(1, 4)):
        body.append(render_lookalike(c, lang))
    for f in r.sample(fillers[1:], min(len(fillers) - 1, r.randrange(1, 3))):
        body.append(f.split("\n"))
    r.shuffle(body)
    for b in body:
        blocks.append(b + [""])
    text = "\n".join("\n".join(b) for b in blocks).rstrip("\n") + "\n"
    return text, labels


def multiline_key_file(c, lang, pem, rule="private-key"):
    """Embed a PEM block verbatim (unindented) in a multi-line string construct."""
    r = c.r
    name = r.choice(["deploy_key", "signing_key", "tls_key", "ssh_key", "jwt_private_key"])
    wrap = {
        "py": ('%s = """\\\n' % upper(name), '\n"""\n'),
        "js": ("const %s = `" % camel(name), "`;\n"),
        "ts": ("export const %s = `" % camel(name), "`;\n"),
        "go": ("const %s = `" % camel(name), "`\n"),
        "rs": ('const %s: &str = r#"' % upper(name), '"#;\n'),
        "rb": ("%s = <<~PEM\n" % upper(name), "\nPEM\n"),
        "php": ("$%s = <<<EOT\n" % camel(name), "\nEOT;\n"),
        "sh": ("cat > ~/.ssh/id_deploy <<'EOF'\n", "\nEOF\nchmod 600 ~/.ssh/id_deploy\n"),
    }[lang]
    head = FILLER[lang][0]
    text = head + "\n" + wrap[0] + pem + wrap[1]
    for _ in range(r.randrange(0, 2)):
        text += "\n" + "\n".join(render_lookalike(c, lang, "pubkey")) + "\n"
    return text


# ----------------------------------------------------------------------------------------
# structured formats
# ----------------------------------------------------------------------------------------
def yaml_scalar(r, v):
    return r.choice(['"%s"' % v, v, "'%s'" % v]) if not v.startswith(("*", "&", "!", "%", "@", "`")) else '"%s"' % v


def k8s_file(c, items):
    r = c.r
    app = r.choice(["billing", "api-gateway", "worker", "search", "notifier", "auth"])
    out = ["apiVersion: v1", "kind: Secret", "metadata:", "  name: %s-credentials" % app, "  namespace: %s" % r.choice(["prod", "staging", "default"]),
           "type: Opaque", "stringData:"]
    for rule, val, ctx, key in items:
        out.append("  %s: %s" % (upper(key), yaml_scalar(r, val)))
    for _ in range(r.randrange(1, 3)):
        c.lookalikes += 1
        out.append("  %s: %s" % (r.choice(["API_TOKEN", "DB_PASSWORD", "SESSION_SECRET"]), r.choice(['"{{ .Values.apiKey }}"', '""', "changeme", '"${DB_PASSWORD}"'])))
    out += ["---", "apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: %s" % app, "spec:", "  replicas: %d" % r.randrange(1, 6),
            "  template:", "    spec:", "      containers:", "        - name: %s" % app,
            "          image: registry.acme.io/%s@sha256:%s" % (app, c.look.sha256()), "          env:"]
    c.lookalikes += 1
    out += ["            - name: LOG_LEVEL", "              value: info",
            "            - name: API_KEY", "              valueFrom:", "                secretKeyRef:",
            "                  name: %s-credentials" % app, "                  key: API_KEY"]
    return "\n".join(out) + "\n"


def gha_file(c, items):
    r = c.r
    out = ["name: deploy", "on:", "  push:", "    branches: [main]", "env:"]
    envs, runs = [], []
    for rule, val, ctx, key in items:
        if ctx in ("header", "cli", "url") and rule != "private-key":
            runs.append(render(r, "sh", key, val, ctx, rule)[0])
        else:
            envs.append("  %s: %s" % (upper(key), yaml_scalar(r, val)))
    c.lookalikes += 2
    envs.append("  GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}")
    envs.append("  NPM_TOKEN: ${{ secrets.NPM_TOKEN }}")
    out += envs
    out += ["jobs:", "  deploy:", "    runs-on: ubuntu-latest", "    steps:", "      - uses: actions/checkout@%s" % c.look.sha1(),
            "      - uses: actions/setup-node@v4", "        with:", "          node-version: 20", "      - name: publish", "        run: |"]
    c.lookalikes += 1
    out += ["          npm ci", "          npm run build"] + ["          " + x for x in runs] + ["          npm publish"]
    return "\n".join(out) + "\n"


def compose_file(c, items):
    r = c.r
    out = ["services:", "  app:", "    build: .", "    ports:", '      - "8080:8080"', "    environment:"]
    for rule, val, ctx, key in items:
        out.append("      - %s=%s" % (upper(key), val))
    c.lookalikes += 2
    out += ["      - POSTGRES_PASSWORD=${POSTGRES_PASSWORD}", "      - DEBUG=false", "  db:", "    image: postgres:16",
            "    environment:", "      POSTGRES_PASSWORD: postgres", "    volumes:", "      - pgdata:/var/lib/postgresql/data",
            "volumes:", "  pgdata: {}"]
    return "\n".join(out) + "\n"


def yaml_cfg_file(c, items):
    r = c.r
    out = ["# application configuration", "server:", "  port: 8080", "  host: 0.0.0.0", "services:"]
    for rule, val, ctx, key in items:
        out.append("  %s:" % r.choice(["payments", "mail", "storage", "search", "ai", "vcs", "chat", "metrics"]))
        out.append("    %s: %s" % (key, yaml_scalar(r, val)))
        out.append("    timeout_ms: %d" % r.randrange(500, 30000))
    c.lookalikes += 3
    out += ["cache:", "  key_prefix: %s" % c.look.uuid(), "  password: null", "build:", "  commit: %s" % c.look.sha1()]
    return "\n".join(out) + "\n"


def json_file(c, items):
    r = c.r
    d = {"name": r.choice(["acme-api", "billing-worker", "dashboard"]), "version": "%d.%d.%d" % (r.randrange(3), r.randrange(20), r.randrange(30)),
         "build": {"commit": c.look.sha1(), "assets": [c.look.asset() for _ in range(2)]}}
    cfg = {}
    for rule, val, ctx, key in items:
        cfg[camel(key) if r.random() < 0.6 else key] = val
    cfg["requestId"] = c.look.uuid()
    cfg["password"] = r.choice(["", None, "********"])
    d["config"] = cfg
    if r.random() < 0.4:
        d["integrity"] = c.look.sri()
    c.lookalikes += 4
    return json.dumps(d, indent=2) + "\n"


def gcp_sa_file(c, pem_escaped):
    r = c.r
    proj = r.choice(["acme-prod", "data-pipeline-3121", "ml-sandbox", "billing-export"]) + "-" + c.g.s(string.digits, 4)
    acct = r.choice(["deployer", "ci-runner", "bq-export", "terraform"])
    sa = ('{\n  "type": "service_account",\n  "project_id": "%s",\n  "private_key_id": "%s",\n  "private_key": "%s\\n",\n'
          '  "client_email": "%s@%s.iam.gserviceaccount.com",\n  "client_id": "%s",\n'
          '  "auth_uri": "https://accounts.google.com/o/oauth2/auth",\n  "token_uri": "https://oauth2.googleapis.com/token",\n'
          '  "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",\n'
          '  "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/%s%%40%s.iam.gserviceaccount.com",\n'
          '  "universe_domain": "googleapis.com"\n}\n') % (proj, c.g.s(HEX, 40), pem_escaped, acct, proj, c.g.s(string.digits, 21), acct, proj)
    return sa


def toml_file(c, items):
    r = c.r
    out = ["[package]", 'name = "%s"' % r.choice(["acme-sync", "uploader", "relay"]), 'version = "0.%d.0"' % r.randrange(20), ""]
    for rule, val, ctx, key in items:
        out += ["[%s]" % r.choice(["auth", "storage", "notify", "upstream", "registry", "llm"]) + ("" if r.random() < 0.5 else ".%s" % r.choice(["prod", "default"])),
                '%s = "%s"' % (key, val), 'timeout = %d' % r.randrange(5, 120), ""]
    c.lookalikes += 2
    out += ["[cache]", 'checksum = "%s"' % c.look.sha256(), 'password = ""']
    return "\n".join(out) + "\n"


def ini_file(c, items, aws=False):
    r = c.r
    out = []
    if aws:
        out = ["[default]"]
        for rule, val, ctx, key in items:
            out.append("%s = %s" % (key, val))
        out += ["region = us-east-1", "", "[example]", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]
        c.lookalikes += 2
        return "\n".join(out) + "\n"
    out = ["; generated by installer", "[server]", "host = 0.0.0.0", "port = 9000", ""]
    for rule, val, ctx, key in items:
        out += ["[%s]" % r.choice(["database", "smtp", "api", "upstream", "mq"]), "%s = %s" % (key, val), "enabled = true", ""]
    c.lookalikes += 2
    out += ["[session]", "secret = changeme", "token_ttl = 3600", "password ="]
    return "\n".join(out) + "\n"


def env_file(c, items):
    r = c.r
    out = ["# %s environment" % r.choice(["production", "staging", "local"]), "NODE_ENV=production", "PORT=%d" % r.choice([3000, 8080, 8000])]
    for rule, val, ctx, key in items:
        if r.random() < 0.2:
            out.append('%s="%s"' % (upper(key), val))
        else:
            out.append("%s=%s" % (upper(key), val))
    neg = ["SECRET_KEY=changeme", "API_TOKEN=", "AUTH_ENABLED=true", "PASSWORD_RESET_TIMEOUT=3600", "TOKEN_TTL=900",
           "JWT_SECRET=${JWT_SECRET}", "STRIPE_SECRET_KEY=sk_test_xxxxxxxxxxxxxxxxxxxxxxxx", "DB_PASSWORD=postgres",
           "SESSION_SECRET=your_session_secret_here", "PRIVATE_KEY_PATH=/run/secrets/key.pem", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
           "BUILD_SHA=" + c.look.sha1(), "TENANT_ID=" + c.look.uuid()]
    for x in r.sample(neg, 3):
        out.append(x)
        c.lookalikes += 1
    r.shuffle(out[3:])
    return "\n".join(out) + "\n"


def tf_file(c, items):
    r = c.r
    out = ['terraform {', '  required_version = ">= 1.5"', '}', '']
    provider_attrs = []
    other = []
    for rule, val, ctx, key in items:
        if rule.startswith("aws"):
            provider_attrs.append('  %s = "%s"' % ("access_key" if rule == "aws-access-key-id" else "secret_key", val))
        else:
            other.append('  %s = "%s"' % (key, val))
    if provider_attrs:
        out += ['provider "aws" {', '  region     = "us-east-1"'] + provider_attrs + ['}', '']
    if other:
        out += ['variable "defaults" {', '  default = {'] + ["  " + x for x in other] + ['  }', '}', '']
    c.lookalikes += 2
    out += ['resource "aws_db_instance" "main" {', '  engine   = "postgres"', '  username = "app"', '  password = var.db_password', '}', '',
            'variable "db_password" {', '  type      = string', '  sensitive = true', '}', '',
            'resource "aws_s3_object" "logo" {', '  etag = "%s"' % c.g.s(HEX, 32), '}']
    return "\n".join(out) + "\n"


def dockerfile(c, items):
    r = c.r
    out = ["FROM python:3.12-slim@sha256:%s" % c.look.sha256(), "WORKDIR /app"]
    c.lookalikes += 1
    for rule, val, ctx, key in items:
        out.append(r.choice(["ENV %s=%s" % (upper(key), val), "ARG %s=%s" % (upper(key), val), 'ENV %s="%s"' % (upper(key), val)]))
    out += ["COPY requirements.txt .", "RUN pip install --no-cache-dir -r requirements.txt", "ARG NPM_TOKEN",
            'RUN echo "//registry.npmjs.org/:_authToken=${NPM_TOKEN}" > ~/.npmrc', "COPY . .", 'CMD ["gunicorn", "app:app"]']
    c.lookalikes += 1
    return "\n".join(out) + "\n"


def md_file(c, items):
    r = c.r
    out = ["# %s" % r.choice(["Setup", "Deploying", "Local development", "Runbook: rotate credentials"]), "",
           "This guide explains how to configure the service. Never commit real credentials; tokens start with `ghp_` or `sk-`.", ""]
    c.lookalikes += 1
    for rule, val, ctx, key in items:
        if rule == "private-key":
            out += ["Paste the deploy key:", "", "```", val, "```", ""]
        elif r.random() < 0.5:
            out += ["```bash", "export %s=%s" % (upper(key), val), "```", ""]
        else:
            out += ["The current %s is `%s` (rotate after the demo)." % (key.replace("_", " "), val), ""]
    out += ["Use `AKIAIOSFODNN7EXAMPLE` / `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY` in examples.", "",
            "```yaml", "token: ${{ secrets.DEPLOY_TOKEN }}", "password: <your-password>", "```", ""]
    c.lookalikes += 4
    return "\n".join(out)


def log_file(c, items):
    r = c.r
    t = r.randrange(1700000000, 1750000000)
    out = []

    def ts():
        nonlocal t
        t += r.randrange(1, 40)
        return "2024-%02d-%02dT%02d:%02d:%02d.%03dZ" % (1 + t % 12, 1 + t % 28, t % 24, t % 60, (t // 7) % 60, t % 1000)

    steps = ["Run actions/checkout@v4", "Syncing repository: acme/api", "Setting up Node 20.11.1", "npm ci", "added 1342 packages in 21s",
             "Cache restored from key: node-cache-Linux-%s" % c.look.sha256(), "Run npm test", "Tests: 412 passed, 412 total"]
    c.lookalikes += 1
    for s in steps[:r.randrange(3, len(steps))]:
        out.append("%s %s" % (ts(), s))
    for rule, val, ctx, key in items:
        out.append(r.choice([
            "%s + curl -H 'Authorization: Bearer %s' https://api.acme.io/deploy" % (ts(), val),
            "%s DEBUG config loaded: %s=%s" % (ts(), key, val),
            "%s ##[debug]Evaluating: env.%s => '%s'" % (ts(), upper(key), val),
            "%s + export %s=%s" % (ts(), upper(key), val),
        ]))
    out.append("%s + export GITHUB_TOKEN=***" % ts())
    out.append("%s request_id=%s status=200 duration_ms=%d" % (ts(), c.look.uuid(), r.randrange(2, 900)))
    c.lookalikes += 2
    out.append("%s Post job cleanup." % ts())
    return "\n".join(out) + "\n"


def ipynb_file(c, items):
    r = c.r
    src = ["import os\n", "import requests\n", "\n"]
    for rule, val, ctx, key in items:
        src.append(r.choice(['%s = "%s"\n' % (upper(key), val), "client = Client(api_key='%s')\n" % val]))
    src.append('resp = requests.get(URL, headers={"X-Request-Id": "%s"})\n' % c.look.uuid())
    c.lookalikes += 2
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Exploration\n", "Quick look at the export."]},
        {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [], "source": src},
        {"cell_type": "code", "execution_count": 2, "metadata": {},
         "outputs": [{"data": {"image/png": c.look.png_data_uri().split(",", 1)[1], "text/plain": ["<Figure size 640x480>"]},
                      "metadata": {}, "output_type": "display_data"}],
         "source": ["df.plot()"]}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1) + "\n"


# ----------------------------------------------------------------------------------------
# planning
# ----------------------------------------------------------------------------------------
CODE_LANGS = ["py", "js", "ts", "go", "rs", "java", "rb", "php", "sh"]
STRUCT = ["k8s", "gha", "compose", "yamlcfg", "json", "toml", "ini", "env", "tf", "docker", "md", "log", "ipynb"]


def build(out, seed=SEED, per_rule=44, encoded_per_kind=20):
    c = Corpus(out, seed)
    r = c.r

    # 1. pool of plain positives -------------------------------------------------------
    pool = []   # (rule, label_value, render_value)
    for rule in RULES:
        for _ in range(per_rule + r.randrange(0, 5)):
            sec, full = c.secret(rule)
            pool.append((rule, sec, full or sec))
    r.shuffle(pool)

    special = {"gcp-service-account": [], "private-key": [], "dotenv-secret": []}
    general = []
    for p in pool:
        (special[p[0]] if p[0] in special else general).append(p)

    # 2. gcp service account JSON files (a few inside terraform heredocs) -----------------
    for i, (rule, sec, _) in enumerate(special["gcp-service-account"]):
        sa = gcp_sa_file(c, sec)
        if i % 6 == 5:
            text = ('resource "google_service_account_key" "ci" {\n  service_account_id = "ci"\n}\n\n'
                    'provider "google" {\n  project     = "acme-prod"\n  credentials = <<EOF\n' + sa + 'EOF\n}\n')
            rel = c.name("gcp_provider", ".tf", "terraform/gcp")
        else:
            rel = c.name(r.choice(["service-account", "gcp-credentials", "sa-key", "bq-export"]), ".json", "credentials/gcp")
        c.add_file(rel, sa if not rel.endswith(".tf") else text, [(rule, sec, "plain", {})])

    # 3. private keys ------------------------------------------------------------------
    for rule, pem, _ in special["private-key"]:
        where = r.choice(["pem", "pem", "pem", "py", "js", "go", "rs", "rb", "php", "sh", "md", "tf", "ts"])
        if where == "pem":
            kind = pem.split("BEGIN ")[1].split("-----")[0]
            stem, ext = {"OPENSSH PRIVATE KEY": ("id_ed25519", ""), "PGP PRIVATE KEY BLOCK": ("signing-key", ".asc")}.get(kind, (r.choice(["server", "tls", "client", "jwt-signing"]), r.choice([".pem", ".key"])))
            rel = c.name(stem, ext, "keys/" + r.choice(["deploy", "infra", "ops", "dev"]))
            c.add_file(rel, pem + "\n", [(rule, pem, "plain", {})])
        elif where == "md":
            rel = c.name("ssh-access", ".md", "docs")
            c.add_file(rel, md_file(c, [(rule, pem, "plain", "ssh_key")]), [(rule, pem, "plain", {})])
        elif where == "tf":
            rel = c.name("tls", ".tf", "terraform/tls")
            text = 'resource "tls_cert_request" "web" {\n  private_key_pem = <<EOF\n' + pem + '\nEOF\n}\n'
            c.add_file(rel, text, [(rule, pem, "plain", {})])
        else:
            rel = c.name(r.choice(STEMS[where]) + "_keys", EXT[where], SUBDIR[where])
            c.add_file(rel, multiline_key_file(c, where, pem), [(rule, pem, "plain", {})])

    # 4. dotenv secrets (mixed with provider values placed in .env files) ----------------
    dot = special["dotenv-secret"]
    env_names = [".env", ".env.production", "config.env", ".env.staging", ".env.local"]
    gi = 0
    i = 0
    n_env = 0
    while i < len(dot):
        k = r.randrange(1, 4)
        items = [(rule, sec, "assign", r.choice(KEYS["dotenv-secret"])) for rule, sec, _ in dot[i:i + k]]
        i += k
        # sprinkle 0-2 provider-format values (labeled with their provider rule)
        for _ in range(r.randrange(0, 3)):
            if gi < len(general) and general[gi][0] not in ("jwt",):
                rule, sec, full = general[gi]
                items.append((rule, full, "assign", r.choice(KEYS.get(rule, ["url"])) if rule != "database-url" else "database_url"))
                general.pop(gi)
            gi += 1
        keys = set()
        fixed = []
        for it in items:
            k2 = it[3]
            while k2 in keys:
                k2 = k2 + "_2"
            keys.add(k2)
            fixed.append((it[0], it[1], it[2], k2))
        proj = "app%02d" % n_env
        n_env += 1
        rel = "dotenv/%s/%s" % (proj, r.choice(env_names))
        text = env_file(c, fixed)
        labs = []
        for rule, v, _, _ in fixed:
            if rule == "database-url":
                labs.append((rule, [p for p in pool if p[2] == v][0][1], "plain", {}))
            elif rule == "generic-secret":
                # A KEY=VALUE line in a .env file is what dotenv-secret means.
                labs.append(("dotenv-secret", v, "plain", {}))
            else:
                labs.append((rule, v, "plain", {}))
        c.add_file(rel, text, labs)

    # 5. everything else: distribute over code and structured files ------------------------
    def pick_kind(rule):
        ks = CODE_LANGS * 2 + STRUCT
        if rule in ("aws-access-key-id", "aws-secret-access-key") and r.random() < 0.25:
            return "aws_ini"
        return r.choice([k for k in ks if k != "env"])

    general = [g for g in general]
    while general:
        rule, sec, full = general.pop()
        kind = pick_kind(rule)
        batch = [(rule, sec, full)]
        want = r.randrange(0, 4)
        j = len(general) - 1
        rules_in = {rule}
        while want and j >= 0:
            if general[j][0] not in rules_in:
                batch.append(general.pop(j))
                rules_in.add(batch[-1][0])
                want -= 1
            j -= 1
        if kind == "aws_ini":
            batch = [b for b in batch if b[0].startswith("aws")] or batch[:1]
        items, labs = [], []
        used_keys = set()
        for rule_, sec_, full_ in batch:
            key = r.choice(KEYS.get(rule_, ["database_url", "db_url", "mongo_uri", "redis_url", "broker_url"]))
            while key in used_keys:
                key = key + "_2"
            used_keys.add(key)
            ctx = r.choice(CONTEXTS)
            if rule_ in ("aws-secret-access-key", "azure-client-secret", "generic-secret") and ctx in ("url", "cli", "header", "comment"):
                ctx = "assign"  # these need their keyword next to them
            if rule_ == "jwt" and r.random() < 0.4:
                ctx = "header"
            if rule_ == "azure-storage-key":
                acct = r.choice(["acmeprodstore", "billingexports", "mlartifacts01", "logsarchive"])
                full_ = "DefaultEndpointsProtocol=https;AccountName=%s;AccountKey=%s;EndpointSuffix=core.windows.net" % (acct, sec_)
                if ctx in ("url", "header"):
                    ctx = "assign"
            items.append((rule_, full_, ctx, key))
            labs.append((rule_, sec_, "plain", {}))
        if kind == "aws_ini":
            rel = c.name("credentials", "", "aws/" + r.choice(["home", "ci", "legacy"]))
            items = [(ru, v, ctx, "aws_access_key_id" if ru == "aws-access-key-id" else "aws_secret_access_key") for ru, v, ctx, _ in items]
            text = ini_file(c, items, aws=True)
        elif kind in CODE_LANGS:
            rel = c.name(r.choice(STEMS[kind]), EXT[kind], SUBDIR[kind] + "/" + r.choice(["src", "lib", "scripts", "app", "internal"]))
            text, _ = lang_file(c, kind, items)
        else:
            fn = {"k8s": (k8s_file, "k8s", "secret", ".yaml"), "gha": (gha_file, "repos/%s/.github/workflows" % r.choice(["api", "web", "infra", "ml"]), "deploy", ".yml"),
                  "compose": (compose_file, "compose", "docker-compose", ".yml"), "yamlcfg": (yaml_cfg_file, "config", "application", ".yaml"),
                  "json": (json_file, "config", "appsettings", ".json"), "toml": (toml_file, "config", "settings", ".toml"),
                  "ini": (ini_file, "config", "app", ".ini"), "tf": (tf_file, "terraform", "main", ".tf"),
                  "docker": (dockerfile, "docker", "Dockerfile", ""), "md": (md_file, "docs", "SETUP", ".md"),
                  "log": (log_file, "ci-logs", "build", ".log"), "ipynb": (ipynb_file, "notebooks", "analysis", ".ipynb")}[kind]
            if kind == "docker":
                rel = c.name("Dockerfile", "", "docker/%s" % r.choice(["api", "worker", "web", "cron", "etl"]))
            else:
                rel = c.name(fn[2], fn[3], fn[1])
            text = fn[0](c, items)
        c.add_file(rel, text, labs)

    # 6. lookalike-only files (pure negatives) --------------------------------------------
    for i in range(40):
        lang = r.choice(CODE_LANGS)
        body = [FILLER[lang][0]]
        for _ in range(r.randrange(4, 9)):
            body.append("\n".join(render_lookalike(c, lang)))
        rel = c.name(r.choice(STEMS[lang]) + "_clean", EXT[lang], SUBDIR[lang] + "/clean")
        c.add_file(rel, "\n".join(body) + "\n", [])
    # npm lockfile with sha512 integrity, Cargo.lock checksums, go.sum, public material
    lock = {"name": "web", "lockfileVersion": 3, "packages": {}}
    for p in ["react", "react-dom", "lodash", "axios", "express", "zod", "vite", "esbuild", "typescript", "eslint"] * 2:
        name = "node_modules/%s%s" % (p, "" if p not in lock["packages"] else "-" + c.g.s(string.ascii_lowercase, 4))
        lock["packages"]["node_modules/" + name.split("/", 1)[1]] = {"version": "1.%d.%d" % (r.randrange(30), r.randrange(30)),
                                                                   "resolved": "https://registry.npmjs.org/%s/-/%s-1.0.0.tgz" % (p, p),
                                                                   "integrity": c.look.sri()}
        c.lookalikes += 1
    c.add_file("lockfiles/package-lock.json", json.dumps(lock, indent=2) + "\n", [])
    cargo = []
    for p in ["serde", "tokio", "regex", "anyhow", "clap", "rand", "sha2", "hex", "base64", "bytes"]:
        cargo += ["[[package]]", 'name = "%s"' % p, 'version = "1.%d.%d"' % (r.randrange(40), r.randrange(20)),
                  'source = "registry+https://github.com/rust-lang/crates.io-index"', 'checksum = "%s"' % c.look.sha256(), ""]
        c.lookalikes += 1
    c.add_file("lockfiles/Cargo.lock", "\n".join(cargo), [])
    gosum = []
    for p in ["github.com/google/uuid v1.6.0", "golang.org/x/crypto v0.21.0", "github.com/stretchr/testify v1.9.0", "gopkg.in/yaml.v3 v3.0.1"]:
        gosum.append("%s h1:%s=" % (p, base64.b64encode(bytes(r.randrange(256) for _ in range(32))).decode()[:-1]))
        gosum.append("%s/go.mod h1:%s=" % (p, base64.b64encode(bytes(r.randrange(256) for _ in range(32))).decode()[:-1]))
        c.lookalikes += 2
    c.add_file("lockfiles/go.sum", "\n".join(gosum) + "\n", [])
    pub = []
    for _ in range(6):
        b = base64.b64encode(bytes(r.randrange(256) for _ in range(r.choice([294, 600])))).decode()
        typ = r.choice(["PUBLIC KEY", "CERTIFICATE", "PGP PUBLIC KEY BLOCK", "CERTIFICATE REQUEST"])
        pub.append("-----BEGIN %s-----\n%s\n-----END %s-----" % (typ, "\n".join(b[i:i + 64] for i in range(0, len(b), 64)), typ))
        c.lookalikes += 1
    c.add_file("keys/public/bundle.pem", "\n".join(pub) + "\n", [])
    web = ["<!doctype html>", "<html><head>"]
    for _ in range(12):
        web.append('<link rel="stylesheet" href="/static/css/%s" integrity="sha384-%s" crossorigin="anonymous">'
                   % (c.look.asset(), base64.b64encode(bytes(r.randrange(256) for _ in range(48))).decode()))
        c.lookalikes += 2
    web.append('</head><body><img src="%s" alt="logo">' % c.look.png_data_uri())
    web.append("<p>Session tokens look like <code>eyJhbGciOiJIUzI1NiJ9.&lt;payload&gt;.&lt;sig&gt;</code>.</p></body></html>")
    c.lookalikes += 2
    c.add_file("web/index.html", "\n".join(web) + "\n", [])

    # 7. encoded set ---------------------------------------------------------------------
    enc_rules = ["aws-secret-access-key", "github-pat", "slack-webhook", "stripe-key", "openai-api-key", "generic-secret",
                 "gitlab-pat", "sendgrid-api-key", "anthropic-api-key", "private-key", "database-url", "azure-storage-key"]
    for i in range(encoded_per_kind):       # base64
        rule = enc_rules[i % len(enc_rules)]
        if rule == "private-key":
            rule = "jwt"
        sec, full = c.secret(rule)
        key = r.choice(KEYS.get(rule, ["database_url"]))
        raw = (full or sec) if i % 2 == 0 else "%s=%s" % (upper(key), full or sec)
        b = base64.b64encode(raw.encode()).decode()
        if i % 3 == 0:
            text = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: enc-%d\ntype: Opaque\ndata:\n  %s: %s\n  LOG_LEVEL: aW5mbw==\n"
                    % (i, upper(key), b))
            rel = c.name("secret", ".yaml", "encoded/base64")
        elif i % 3 == 1:
            text = "#!/bin/sh\n# decoded at boot\necho '%s' | base64 -d > /run/app.env\n" % b
            rel = c.name("boot", ".sh", "encoded/base64")
        else:
            text = json.dumps({"payload": b, "encoding": "base64", "id": c.look.uuid()}, indent=2) + "\n"
            rel = c.name("blob", ".json", "encoded/base64")
        c.add_file(rel, text, [(rule, b, "base64", {"decoded": sec})])
    for i in range(encoded_per_kind):       # url
        rule = ["aws-secret-access-key", "azure-storage-key", "slack-webhook", "database-url", "generic-secret"][i % 5]
        if rule == "aws-secret-access-key":
            sec = c.g.aws_secret(need_special=True)
            e = urllib.parse.quote(sec, safe="")
            text = "GET /upload?aws_access_key_id=%s&aws_secret_access_key=%s&bucket=logs HTTP/1.1\n" % (c.g.aws_access_key_id(), e)
        elif rule == "azure-storage-key":
            sec = c.g.azure_storage_key()
            e = urllib.parse.quote(sec, safe="")
            text = "connection=DefaultEndpointsProtocol%%3Dhttps%%3BAccountName%%3Dacmelogs%%3BAccountKey%%3D%s%%3BEndpointSuffix%%3Dcore.windows.net\n" % e
            # label the encoded key value only
        elif rule == "slack-webhook":
            sec = c.g.slack_webhook()
            e = urllib.parse.quote(sec, safe="")
            text = "https://alerts.acme.io/subscribe?target=%s&channel=ops\n" % e
        elif rule == "database-url":
            pw = c.g.password(12, 20) + r.choice(["@", "/", ":", "#", "?"]) + c.g.s(ALNUM, 4)
            sec = pw
            e = urllib.parse.quote(pw, safe="")
            text = "DATABASE_URL=postgres://app:%s@db.internal:5432/app\n" % e
        else:
            sec = c.g.password(14, 24) + r.choice(["+", "/", "&", "="]) + c.g.s(ALNUM, 3)
            e = urllib.parse.quote(sec, safe="")
            text = "curl -X POST https://auth.acme.io/token -d 'grant_type=password&username=ops&password=%s'\n" % e
        assert "%" in e
        rel = c.name("request", ".txt" if i % 2 else ".log", "encoded/url")
        if rule == "aws-secret-access-key":
            # the access key id in the same line is a plain positive too
            akid = text.split("aws_access_key_id=")[1].split("&")[0]
            c.add_file(rel, text, [(rule, e, "url", {"decoded": sec}), ("aws-access-key-id", akid, "plain", {})])
        else:
            c.add_file(rel, text, [(rule, e, "url", {"decoded": sec})])
    for i in range(encoded_per_kind):       # json-escaped
        rule = ["private-key", "slack-webhook", "aws-secret-access-key", "generic-secret"][i % 4]
        if rule == "private-key":
            sec = c.g.private_key(r.choice(["RSA", "EC", "OPENSSH", "PKCS8"]))
            e = json.dumps(sec)[1:-1]
            text = '{\n  "name": "deploy-bot",\n  "ssh_private_key": "%s",\n  "known_hosts": "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA%s"\n}\n' % (e, c.g.s(B64, 43))
        elif rule == "slack-webhook":
            sec = c.g.slack_webhook()
            e = sec.replace("/", "\\/")
            text = '{"ok":true,"settings":{"channel":"#ops","webhook":"%s","retries":3}}\n' % e
        elif rule == "aws-secret-access-key":
            sec = c.g.aws_secret(need_special=True)
            while "/" not in sec:
                sec = c.g.aws_secret(need_special=True)
            e = sec.replace("/", "\\/")
            text = '{"Credentials":{"AccessKeyId":"%s","SecretAccessKey":"%s","Expiration":"2024-11-02T10:00:00Z"}}\n' % (c.g.aws_access_key_id(), e)
        else:
            base = c.g.password(12, 20)
            sec = base[:6] + '"' + base[6:] + "\\" + c.g.s(ALNUM, 3)
            e = json.dumps(sec)[1:-1]
            text = '{\n  "smtp": {\n    "host": "smtp.acme.io",\n    "password": "%s"\n  }\n}\n' % e
        rel = c.name("response", ".json", "encoded/json")
        labs = [(rule, e, "json", {"decoded": sec})]
        if rule == "aws-secret-access-key":
            akid = text.split('"AccessKeyId":"')[1].split('"')[0]
            labs.append(("aws-access-key-id", akid, "plain", {}))
        c.add_file(rel, text, labs)

    # README
    c.files["README.md"] = README
    return c


README = """# airlock-redact test corpus

Labeled corpus for the secret detection engine (`crates/redact`). **Generated — do not edit by hand.**

Regenerate (deterministic, fixed seed, Python 3 stdlib only):

    python3 crates/redact/tests/gen_corpus.py

**Every secret in this directory is random and fake.** None is, or ever was, a live credential.
Values are shaped like real provider credentials (prefixes, lengths, alphabets, and checksums where
the format has one: the CRC32/base62 tail of `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`npm_` tokens, the
CRC-24 armor line of PGP blocks) so that shape and checksum validation can be tested. Secret scanners
on code hosts and package registries may flag these files; that is expected and harmless.

## Layout

- `labels.jsonl` — one JSON object per planted secret:
  `{"file": "relative/path", "rule": "rule-id", "secret": "exact substring", "encoding": "plain|base64|url|json", "line": N}`.
  `secret` is exactly what the rule should report and occurs exactly once in `file`; `line` is the
  1-based line where it starts (multi-line PEM blocks span more lines). Encoded labels also carry
  `"decoded"` (the underlying secret). Labels never overlap.
- `encoded/` — one-level encoded secrets: base64 (of the value or of a `KEY=value` line), URL-encoded,
  JSON-escaped (`\\n`, `\\/`, `\\"`). For these `secret` is the encoded run as it appears in the file.
- Everything else: source/config files (Python, JS/TS, Go, Rust, Java, Ruby, PHP, shell, k8s / GitHub
  Actions / docker-compose YAML, JSON, TOML, INI, `.env`, Terraform, Dockerfile, Markdown, CI logs,
  notebooks) with plain secrets in varied contexts, plus lookalikes.

Anything not in `labels.jsonl` is a negative. Lookalikes include UUIDs, git SHAs, sha256 digests,
`sha512-`/`sha384-` integrity strings, Cargo.lock / go.sum checksums, the AWS documentation keys
(`AKIAIOSFODNN7EXAMPLE`, `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`), placeholder values
(EXAMPLE/dummy/placeholder/changeme/`your_api_key_here`/`xxxx`/`<token>`/`${TOKEN}`/`{{ secrets.X }}`),
provider-shaped placeholders (`ghp_xxxx…`, `sk_test_EXAMPLE…`, the jwt.io sample token), `ghp_` tokens
with a wrong CRC32 checksum, environment/variable references, empty/null values, function calls and type
annotations, bcrypt hashes, PNG data URIs, content-hashed asset names, SSH/PEM public keys and
certificates, and placeholder database URLs (`postgres://postgres:postgres@localhost…`).
Also unlabeled: `private_key_id` (40 hex) in GCP service-account files.

`providers/` (from `gen_providers.py`): one file per provider rule, covering at least every
provider in gitleaks' default configuration, with labeled secrets in the assignment contexts
gitleaks' own rule tests use plus `var key = "…"` and `"key": "…"`, and hard negatives (filler of
the right shape, a value one character short, a `${REFERENCE}`).
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--per-rule", type=int, default=44)
    ap.add_argument("--encoded", type=int, default=20, help="encoded cases per encoding")
    a = ap.parse_args()
    c = build(a.out, a.seed, a.per_rule, a.encoded)
    # Provider credentials (issue 14): a separate generator with its own RNG, so the files
    # above stay byte-identical when the provider list grows.
    import gen_providers
    gen_providers.extend(c)
    c.write()
    n = {}
    for d in c.labels:
        n[(d["rule"], d["encoding"])] = n.get((d["rule"], d["encoding"]), 0) + 1
    size = sum(len(v.encode()) for v in c.files.values())
    print("wrote %d files, %d bytes, %d labels, ~%d lookalikes to %s" % (len(c.files), size, len(c.labels), c.lookalikes, a.out))
    for rule in RULES:
        print("  %-26s plain=%-3d encoded=%d" % (rule, n.get((rule, "plain"), 0), sum(v for (ru, e), v in n.items() if ru == rule and e != "plain")))


if __name__ == "__main__":
    main()
