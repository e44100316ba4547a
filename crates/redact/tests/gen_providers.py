"""Provider credentials for the labeled corpus (called by gen_corpus.py; own RNG, so the rest of
the corpus does not change when this file does).

Every secret is random and fake, shaped after the provider's published token format. Contexts
follow the assignment shapes gitleaks' rule tests embed their samples in (INI, JSON, YAML, Go,
Java, Kotlin, Python, PHP, C#, logstash, Makefile, `setProperty("X", "…")`, see gitleaks
cmd/generate/config/utils/generate.go), plus the ones issue 14 found missed (`var key = "…"`,
`"key": "…"`). Key names never contain `token`/`secret`/`password`/`api_key`, so the label is
the provider's rule and not `generic-secret`.

Hard negatives per provider: filler of the right shape (`dop_v1_000…`), a truncated value,
and a reference (`${X}`) under the provider's key.
"""

import random
import string

LOW = string.ascii_lowercase
UP = string.ascii_uppercase
DIG = string.digits
HEX = "0123456789abcdef"
ALNUM = LOW + UP + DIG
ALNUM_LOW = LOW + DIG
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
CROCKFORD_AGE = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"


def uuid(r):
    h = lambda n: "".join(r.choice(HEX) for _ in range(n))
    return "%s-%s-%s-%s-%s" % (h(8), h(4), h(4), h(4), h(12))


# rule id -> (key word for keyed contexts or None for prefixed tokens, generator(r, s) where
# s(alphabet, n) draws n characters).
def shapes():
    return {
        # prefixed / structured tokens
        "1password-secret-key": (None, lambda r, s: "A3-%s-%s-%s-%s-%s" % (s(UP + DIG, 6), s(UP + DIG, 11), s(UP + DIG, 5), s(UP + DIG, 5), s(UP + DIG, 5))),
        "1password-service-account-token": (None, lambda r, s: "ops_eyJ" + s(B64, 260)),
        "adobe-client-secret": (None, lambda r, s: "p8e-" + s(ALNUM, 32)),
        "age-secret-key": (None, lambda r, s: "AGE-SECRET-KEY-1" + s(CROCKFORD_AGE, 58)),
        "airtable-pat": (None, lambda r, s: "pat" + s(ALNUM, 14) + "." + s(HEX, 64)),
        "alibaba-access-key-id": (None, lambda r, s: "LTAI" + s(ALNUM, 20)),
        "artifactory-token": (None, lambda r, s: r.choice(["AKCp" + s(ALNUM, 69), "cmVmd" + s(ALNUM, 59)])),
        "atlassian-api-token": (None, lambda r, s: "ATATT3" + s(URLSAFE, 186)),
        "authress-access-key": (None, lambda r, s: "sc_%s.%s.acc_%s.%s" % (s(ALNUM_LOW, 12), s(ALNUM_LOW, 5), s(ALNUM_LOW, 16), s(URLSAFE, 60))),
        "aws-bedrock-api-key": (None, lambda r, s: "ABSK" + s(B64, 130)),
        "clickhouse-api-secret": (None, lambda r, s: "4b1d" + s(ALNUM, 38)),
        "clojars-api-token": (None, lambda r, s: "CLOJARS_" + s(ALNUM_LOW, 60)),
        "cloudflare-origin-ca-key": (None, lambda r, s: "v1.0-" + s(HEX, 24) + "-" + s(HEX, 146)),
        "databricks-api-token": (None, lambda r, s: "dapi" + s(HEX, 32)),
        "defined-networking-api-token": (None, lambda r, s: "dnkey-" + s(ALNUM, 26) + "-" + s(ALNUM, 52)),
        "digitalocean-token": (None, lambda r, s: r.choice(["dop", "doo", "dor"]) + "_v1_" + s(HEX, 64)),
        "doppler-api-token": (None, lambda r, s: "dp.%s.%s" % (r.choice(["pt", "st", "sa"]), s(ALNUM, 43))),
        "dropbox-short-lived-token": (None, lambda r, s: "sl." + s(URLSAFE, 135)),
        "duffel-api-token": (None, lambda r, s: "duffel_%s_%s" % (r.choice(["test", "live"]), s(URLSAFE, 43))),
        "dynatrace-api-token": (None, lambda r, s: "dt0c01.%s.%s" % (s(UP + DIG, 24), s(UP + DIG, 64))),
        "easypost-api-token": (None, lambda r, s: r.choice(["EZAK", "EZTK"]) + s(ALNUM, 54)),
        "facebook-access-token": (None, lambda r, s: "EAA" + r.choice("CMB") + s(ALNUM, 150)),
        "flutterwave-key": (None, lambda r, s: "FLWSECK_TEST-%s-X" % s(HEX, 32)),
        "flyio-access-token": (None, lambda r, s: "fo1_" + s(URLSAFE, 43)),
        "frameio-api-token": (None, lambda r, s: "fio-u-" + s(URLSAFE, 64)),
        "gitlab-token": (None, lambda r, s: r.choice(["glptt-" + s(HEX, 40), "gldt-" + s(ALNUM, 20), "glrt-" + s(ALNUM, 20), "glsoat-" + s(ALNUM, 20), "glcbt-1_" + s(ALNUM, 20), "gloas-" + s(ALNUM, 64)])),
        "grafana-token": (None, lambda r, s: r.choice(["glsa_%s_%s" % (s(ALNUM, 32), s(HEX, 8)), "glc_" + s(ALNUM, 60), "eyJrIjoi" + s(ALNUM, 80)])),
        "harness-api-key": (None, lambda r, s: "pat.%s.%s.%s" % (s(URLSAFE, 22), s(ALNUM, 24), s(ALNUM, 20))),
        "hashicorp-tf-api-token": (None, lambda r, s: "%s.atlasv1.%s" % (s(ALNUM, 14), s(URLSAFE, 67))),
        "vault-token": (None, lambda r, s: r.choice(["hvs." + s(URLSAFE, 95), "hvb." + s(URLSAFE, 140)])),
        "heroku-api-key-v2": (None, lambda r, s: "HRKU-AA" + s(URLSAFE, 58)),
        "huggingface-org-token": (None, lambda r, s: "api_org_" + s(LOW + UP, 34)),
        "infracost-api-token": (None, lambda r, s: "ico-" + s(ALNUM, 32)),
        "intra42-client-secret": (None, lambda r, s: "s-s4t2ud-" + s(HEX, 64)),
        "linear-api-key": (None, lambda r, s: "lin_api_" + s(ALNUM, 40)),
        "mailchimp-api-key": (None, lambda r, s: s(HEX, 32) + "-us" + str(r.randrange(1, 21))),
        "mapbox-secret-token": (None, lambda r, s: "sk.eyJ" + s(URLSAFE, 60) + "." + s(URLSAFE, 22)),
        "maxmind-license-key": (None, lambda r, s: "%s_%s_mmk" % (s(ALNUM, 6), s(ALNUM, 29))),
        "microsoft-teams-webhook": (None, lambda r, s: "https://acme.webhook.office.com/webhookb2/%s@%s/IncomingWebhook/%s/%s" % (uuid(r), uuid(r), s(HEX, 32), uuid(r))),
        "new-relic-key": (None, lambda r, s: r.choice(["NRAK-" + s(UP + DIG, 27), "NRII-" + s(ALNUM, 32)])),
        "notion-api-token": (None, lambda r, s: "ntn_" + s(DIG, 11) + s(ALNUM, 35)),
        "octopus-deploy-api-key": (None, lambda r, s: "API-" + s(UP + DIG, 26)),
        "openshift-user-token": (None, lambda r, s: "sha256~" + s(URLSAFE, 43)),
        "perplexity-api-key": (None, lambda r, s: "pplx-" + s(ALNUM, 48)),
        "plaid-access-token": (None, lambda r, s: "access-%s-%s" % (r.choice(["sandbox", "production"]), uuid(r))),
        "planetscale-token": (None, lambda r, s: "pscale_%s_%s" % (r.choice(["tkn", "oauth", "pw"]), s(ALNUM, 43))),
        "postman-api-token": (None, lambda r, s: "PMAK-%s-%s" % (s(HEX, 24), s(HEX, 34))),
        "prefect-api-token": (None, lambda r, s: "pnu_" + s(ALNUM, 36)),
        "pulumi-api-token": (None, lambda r, s: "pul-" + s(HEX, 40)),
        "readme-api-token": (None, lambda r, s: "rdme_" + s(ALNUM_LOW, 70)),
        "rubygems-api-token": (None, lambda r, s: "rubygems_" + s(HEX, 48)),
        "scalingo-api-token": (None, lambda r, s: "tk-us-" + s(URLSAFE, 48)),
        "sendinblue-api-key": (None, lambda r, s: "xkeysib-%s-%s" % (s(HEX, 64), s(ALNUM, 16))),
        "sentry-token": (None, lambda r, s: "sntryu_" + s(HEX, 64)),
        "settlemint-token": (None, lambda r, s: "sm_%s_%s" % (r.choice(["aat", "pat", "sat"]), s(ALNUM, 16))),
        "shippo-api-token": (None, lambda r, s: "shippo_%s_%s" % (r.choice(["live", "test"]), s(HEX, 40))),
        "shopify-token": (None, lambda r, s: r.choice(["shpat_", "shpca_", "shppa_", "shpss_"]) + s(HEX, 32)),
        "slack-app-token": (None, lambda r, s: "xapp-1-%s-%s-%s" % (s(UP + DIG, 11), s(DIG, 13), s(HEX, 64))),
        "sonar-token": (None, lambda r, s: r.choice(["squ_", "sqp_", "sqa_"]) + s(HEX, 40)),
        "sourcegraph-access-token": (None, lambda r, s: "sgp_%s_%s" % (s(HEX, 16), s(HEX, 40))),
        "square-token": (None, lambda r, s: r.choice(["sq0atp-" + s(URLSAFE, 22), "sq0csp-" + s(URLSAFE, 43)])),
        "stripe-webhook-secret": (None, lambda r, s: "whsec_" + s(ALNUM, 32)),
        "telegram-bot-token": (None, lambda r, s: "%s:AA%s" % (s(DIG, 10), s(URLSAFE, 33))),
        "typeform-api-token": (None, lambda r, s: "tfp_" + s(ALNUM, 59)),
        "yandex-token": (None, lambda r, s: "AQVN" + s(URLSAFE, 36)),
        # keyed: (key word, value)
        "adafruit-api-key": ("adafruit", lambda r, s: "aio_" + s(ALNUM, 28)),
        "adobe-client-id": ("adobe", lambda r, s: s(HEX, 32)),
        "airtable-api-key": ("airtable", lambda r, s: "key" + s(ALNUM, 14)),
        "algolia-api-key": ("algolia", lambda r, s: s(HEX, 32)),
        "alibaba-secret-key": ("alibaba", lambda r, s: s(ALNUM, 30)),
        "asana-secret": ("asana", lambda r, s: s(ALNUM_LOW, 32)),
        "atlassian-keyed-token": ("jira", lambda r, s: s(ALNUM, 24)),
        "beamer-api-token": ("beamer", lambda r, s: "b_" + s(URLSAFE, 44)),
        "bitbucket-secret": ("bitbucket", lambda r, s: s(ALNUM, 32)),
        "bittrex-key": ("bittrex", lambda r, s: s(HEX, 32)),
        "cisco-meraki-api-key": ("meraki", lambda r, s: s(HEX, 40)),
        "cloudflare-api-key": ("cloudflare", lambda r, s: s(URLSAFE, 40)),
        "codecov-access-token": ("codecov", lambda r, s: uuid(r)),
        "cohere-api-token": ("cohere", lambda r, s: s(ALNUM, 40)),
        "coinbase-access-token": ("coinbase", lambda r, s: s(URLSAFE, 64)),
        "confluent-key": ("confluent", lambda r, s: s(UP + DIG, 16)),
        "contentful-delivery-api-token": ("contentful", lambda r, s: s(URLSAFE, 43)),
        "datadog-access-token": ("datadog", lambda r, s: s(HEX, 32)),
        "discord-secret": ("discord", lambda r, s: s(HEX, 64)),
        "droneci-access-token": ("droneci", lambda r, s: s(ALNUM, 32)),
        "dropbox-api-token": ("dropbox", lambda r, s: s(ALNUM, 11) + "AAAAAAAAAA" + s(URLSAFE, 43)),
        "etsy-access-token": ("etsy", lambda r, s: s(ALNUM_LOW, 24)),
        "facebook-secret": ("facebook", lambda r, s: s(HEX, 32)),
        "facebook-app-access-token": ("facebook", lambda r, s: s(DIG, 15) + "|" + s(URLSAFE, 27)),
        "sourcegraph-keyed-token": ("sourcegraph", lambda r, s: s(HEX, 40)),
        "fastly-api-token": ("fastly", lambda r, s: s(URLSAFE, 32)),
        "finicity-secret": ("finicity", lambda r, s: s(HEX, 32)),
        "finnhub-access-token": ("finnhub", lambda r, s: s(ALNUM_LOW, 20)),
        "flickr-access-token": ("flickr", lambda r, s: s(HEX, 32)),
        "freshbooks-access-token": ("freshbooks", lambda r, s: s(ALNUM_LOW, 64)),
        "gitter-access-token": ("gitter", lambda r, s: s(HEX, 40)),
        "gocardless-api-token": ("gocardless", lambda r, s: "live_" + s(URLSAFE, 40)),
        "heroku-api-key": ("heroku", lambda r, s: uuid(r)),
        "hubspot-api-key": ("hubspot", lambda r, s: "pat-na1-" + uuid(r)),
        "intercom-api-key": ("intercom", lambda r, s: s(ALNUM, 60)),
        "jfrog-api-key": ("jfrog", lambda r, s: s(ALNUM, 64)),
        "kraken-access-token": ("kraken", lambda r, s: s(B64, 86)),
        "kucoin-key": ("kucoin", lambda r, s: s(HEX, 24)),
        "launchdarkly-access-token": ("launchdarkly", lambda r, s: "api-" + uuid(r)),
        "linear-client-secret": ("linear", lambda r, s: s(HEX, 32)),
        "linkedin-client-secret": ("linkedin", lambda r, s: s(ALNUM, 16)),
        "lob-api-key": ("lob", lambda r, s: "live_" + s(HEX, 35)),
        "looker-client-secret": ("looker", lambda r, s: s(ALNUM, 24)),
        "mailgun-key": ("mailgun", lambda r, s: "key-" + s(HEX, 32)),
        "mapbox-token": ("mapbox", lambda r, s: "pk." + s(URLSAFE, 60) + "." + s(URLSAFE, 22)),
        "mattermost-access-token": ("mattermost", lambda r, s: s(ALNUM_LOW, 26)),
        "messagebird-api-token": ("messagebird", lambda r, s: s(ALNUM, 25)),
        "netlify-access-token": ("netlify", lambda r, s: "nfp_" + s(ALNUM, 36)),
        "new-relic-keyed": ("newrelic", lambda r, s: s(HEX, 36) + "NRAL"),
        "nytimes-access-token": ("nytimes", lambda r, s: s(ALNUM, 32)),
        "okta-access-token": ("okta", lambda r, s: "00" + s(URLSAFE, 40)),
        "plaid-secret": ("plaid", lambda r, s: s(HEX, 30)),
        "privateai-api-token": ("privateai", lambda r, s: s(HEX, 32)),
        "rapidapi-access-token": ("rapidapi", lambda r, s: s(ALNUM, 50)),
        "sendbird-access-token": ("sendbird", lambda r, s: s(HEX, 40)),
        "sentry-access-token": ("sentry", lambda r, s: s(HEX, 64)),
        "sidekiq-secret": ("BUNDLE_GEMS__CONTRIBSYS__COM", lambda r, s: s(HEX, 8) + ":" + s(HEX, 8)),
        "snyk-api-token": ("snyk", lambda r, s: uuid(r)),
        "sonar-keyed-token": ("sonar_login", lambda r, s: s(HEX, 40)),
        "squarespace-access-token": ("squarespace", lambda r, s: uuid(r)),
        "sumologic-key": ("sumo", lambda r, s: "su" + s(ALNUM, 12)),
        "travisci-access-token": ("travis", lambda r, s: s(ALNUM, 22)),
        "twitch-api-token": ("twitch", lambda r, s: s(ALNUM_LOW, 30)),
        "twitter-secret": ("twitter", lambda r, s: s(DIG, 19) + "-" + s(ALNUM, 30)),
        "yandex-keyed-token": ("yandex", lambda r, s: "YC" + s(URLSAFE, 38)),
        "zendesk-secret-key": ("zendesk", lambda r, s: s(ALNUM, 40)),
    }


# Contexts: {k} a key naming the provider (without generic words), {K} its upper-case form, {s}
# the secret.
CONTEXTS = [
    'var key = "{s}"',
    '  "key": "{s}",',
    '{k}Key="{s}"',
    '{k}Key = {s}',
    '{{\n    "{k}_key": "{s}"\n}}',
    '{{"config.ini": "{K}_KEY={s}\\nBACKUP_ENABLED=true"}}',
    '{k}_key: {s}',
    "{k}_key: '{s}'",
    'string {k}Key = "{s}";',
    'var {k}Key string = "{s}"',
    '{k}Key := `{s}`',
    'String {k}Key = "{s}";',
    '${k}Key .= "{s}"',
    "{k}Key = '{s}'",
    'System.setProperty("{K}_KEY", "{s}")',
    '  "{k}Key" => "{s}"',
    '{K}_KEY ::= "{s}"',
    'export {K}_KEY={s}',
]
# Prefixed tokens also in contexts with no key at all.
FREE_CONTEXTS = [
    "curl -s https://api.example.net/v1/me -d key={s}",
    "# rotated on 2024-03-02, old value {s}",
    "client = Client('{s}')",
]


def extend(c, seed=20251207):
    r = random.Random(seed)

    def s(alphabet, n):
        return "".join(r.choice(alphabet) for _ in range(n))

    for rule, (word, gen) in sorted(shapes().items()):
        k = word or rule.split("-")[0].replace("1password", "op")
        k = k if word is None or not word.isupper() else word
        K = k.upper()
        kl = k if not k.isupper() else k.lower()
        lines, labels = [], []
        choices = list(CONTEXTS) + ([] if word else FREE_CONTEXTS)
        picked = r.sample(choices, 7)
        if word is None:
            picked[:2] = ['var key = "{s}"', '  "key": "{s}",']
        for ctx in picked:
            sec = gen(r, s)
            if word and ("var key" in ctx or '"key"' in ctx):
                ctx = ctx.replace("var key", "var %sKey" % kl).replace('"key"', '"%s_key"' % kl)
            if word and word.isupper():
                ctx = ctx.replace("{k}Key", "{K}").replace("{k}_key", "{K}").replace("{K}_KEY", "{K}")
            lines.append(ctx.format(k=kl, K=K, s=sec))
            labels.append((rule, sec, "plain", {}))
        # Hard negatives: filler, one short, a reference.
        sample = gen(r, s)
        filler = sample[: max(4, len(sample) // 3)] + "0" * (len(sample) - max(4, len(sample) // 3))
        lines.append("{k}Example = \"{v}\"".format(k=kl, v=filler.replace(filler[-8:], "xxxxxxxx")))
        lines.append("{K}_KEY_DOCS = \"{v}\"  # a truncated key".format(K=K, v=sample[: len(sample) // 3]))
        lines.append("{k}Key = \"${{{K}_KEY}}\"".format(k=kl, K=K))
        lines.append("{k}_region = \"us-east-1\"".format(k=kl))
        c.add_file("providers/%s.txt" % rule, "\n".join(lines) + "\n", labels)
    contexts(c, r, s)


def b64(text):
    import base64
    return base64.b64encode(text.encode()).decode()


def contexts(c, r, s):
    """Credentials that are not a provider's token but a context: URLs, Basic auth, docker's
    config.json, .netrc, curl -u, Authorization headers."""
    users = ["deploy", "ci-bot", "alice", "svc_reporting", "x-access-token"]
    # url-credentials
    lines, labels = [], []
    for scheme, host in [("https", "git.acme.internal/org/repo.git"), ("http", "proxy.corp:3128"), ("ftp", "files.acme.net/in"),
                         ("amqp+ssl", "mq.acme.net:5671"), ("https", "registry.npm.acme.dev/"), ("smtp", "mail.acme.net:587"),
                         ("ssh", "bastion.acme.net")]:
        pw = s(ALNUM, r.randrange(14, 30))
        lines.append('remote = "%s://%s:%s@%s"' % (scheme, r.choice(users), pw, host))
        labels.append(("url-credentials", pw, "plain", {}))
    lines += ["https://user@example.com/path", "see http://localhost:8080/@admin", "git@github.com:org/repo.git",
              "https://user:password@example.com/", "https://${USER}:${PASS}@host/", "http://proxy:3128",
              "https://admin:admin@localhost:9000/", "mailto:user@example.com"]
    c.add_file("providers/contexts/url-credentials.txt", "\n".join(lines) + "\n", labels)
    # basic-auth
    lines, labels = [], []
    for tpl in ["Authorization: Basic {b}", "curl -H 'Authorization: Basic {b}' https://api.acme.net",
                "headers['Authorization'] = 'Basic {b}'", "auth_header: \"Basic {b}\"", "> authorization: basic {b}",
                "req.set_header(\"Authorization\", \"Basic {b}\")"]:
        b = b64("%s:%s" % (r.choice(users), s(ALNUM, r.randrange(16, 40))))
        lines.append(tpl.format(b=b))
        labels.append(("basic-auth", b, "plain", {}))
    lines += ["Authorization: Basic " + b64("user:password"), "Basic authentication is configured below.",
              "basic_setup_instructions", "Authorization: Basic ${CREDS}", "Basic " + b64("no colon in this one")]
    c.add_file("providers/contexts/basic-auth.txt", "\n".join(lines) + "\n", labels)
    # docker config.json
    for i in range(4):
        b = b64("%s:%s" % (r.choice(users), s(ALNUM, 24)))
        b2 = b64("%s:%s" % (r.choice(users), "dckr_pat_" + s(URLSAFE, 27))) if i % 2 else None
        text = '{\n  "auths": {\n    "https://index.docker.io/v1/": {\n      "auth": "%s"\n    }' % b
        labels = [("docker-config-auth", b, "plain", {})]
        if b2:
            text += ',\n    "ghcr.io": {\n      "auth": "%s"\n    }' % b2
            labels.append(("docker-config-auth", b2, "plain", {}))
        text += '\n  },\n  "credsStore": "desktop",\n  "HttpHeaders": {"User-Agent": "Docker-Client/24.0.7 (linux)"}\n}\n'
        c.add_file("providers/contexts/docker/config_%d.json" % i, text, labels)
    c.add_file("providers/contexts/docker/config_helper.json",
               '{\n  "auths": {\n    "https://index.docker.io/v1/": {}\n  },\n  "credsStore": "osxkeychain",\n  "auth": ""\n}\n', [])
    # .netrc
    for i in range(4):
        pws = [s(ALNUM, r.randrange(16, 36)) for _ in range(2)]
        if i % 2:
            text = "machine api.heroku.com\n  login me@acme.net\n  password %s\nmachine git.heroku.com login me@acme.net password %s\n" % tuple(pws)
        else:
            text = "machine github.com login ci-bot password %s\n\nmachine registry.acme.net\n\tlogin deploy\n\tpassword %s\n" % tuple(pws)
        c.add_file("providers/contexts/netrc/%d/.netrc" % i, text, [("netrc-password", p, "plain", {}) for p in pws])
    c.add_file("providers/contexts/netrc/docs.md",
               "The machine learning model needs a password manager.\nmachine example.com login user password password\n"
               "machine host login me password ${NETRC_PASSWORD}\n", [])
    # curl -u
    lines, labels = [], []
    for tpl in ["curl -u {c} https://api.acme.net/v1/items", "curl -sS --user {c} -X POST https://ci.acme.net/job/build",
                "  curl --user={c} https://nexus.acme.net/repository/raw/", "curl -fsSL -u '{c}' https://artifacts.acme.net/x.tgz"]:
        cred = "%s:%s" % (r.choice(users), s(ALNUM, r.randrange(14, 30)))
        lines.append(tpl.format(c=cred))
        labels.append(("curl-user-password", cred, "plain", {}))
    lines += ["curl -u user:password https://example.com", "curl -u $USER:$TOKEN https://x", "curl -u admin: https://x",
              "curl --user \"${CREDS}\" https://x"]
    c.add_file("providers/contexts/curl.sh", "\n".join(lines) + "\n", labels)
    # Unknown providers' keys under a bare `key` (no provider name, no generic key word).
    lines, labels = [], []
    for tpl in ['var key = "{v}";', '  "key": "{v}",', "const clientKey = '{v}'", "licenseKey: \"{v}\"",
                "client = Acme(key=\"{v}\")", "ACME_KEY = '{v}'", "$config['key'] = '{v}';"]:
        v = r.choice(["acme_live_", "zk-", "", "tk_"]) + s(ALNUM, r.randrange(24, 40))
        while sum(ch.isdigit() for ch in v) < 2 or sum(ch.isalpha() for ch in v) < 4:
            v = s(ALNUM, 32)
        lines.append(tpl.format(v=v))
        labels.append(("key-assignment", v, "plain", {}))
    lines += ['  "key": "settings.notifications.emailDigestFrequency",', '"publicKey": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE' + s(B64, 40) + '"',
              'cacheKey: "v1-deps-linux-' + s(HEX, 12) + '"', '"key": "' + s(HEX, 40) + '",', 'key = "' + uuid(r) + '"',
              '<li key="navigation-item-primary-dropdown">', '"key": "ArrowUpArrowDownEnterEscape"', 'var key = "xxxxxxxxxxxxxxxxxxxxxxxx"']
    c.add_file("providers/contexts/key-assignment.js", "\n".join(lines) + "\n", labels)
    # NuGet.config
    for i in range(3):
        pw = s(ALNUM, r.randrange(16, 32))
        text = ('<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <packageSourceCredentials>\n    <acme>\n'
                '      <add key="Username" value="ci-bot" />\n      <add key="%sPassword" value="%s" />\n'
                '    </acme>\n  </packageSourceCredentials>\n</configuration>\n') % ("ClearText" if i % 2 else "", pw)
        c.add_file("providers/contexts/nuget/%d/NuGet.config" % i, text, [("nuget-config-password", pw, "plain", {})])
    c.add_file("providers/contexts/nuget/NuGet.config",
               '<configuration>\n  <packageSources>\n    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />\n'
               '  </packageSources>\n  <add key="Password" value="%NUGET_PASSWORD%" />\n</configuration>\n', [])
    # Authorization: Bearer <opaque>
    lines, labels = [], []
    for tpl in ["Authorization: Bearer {t}", "-H \"Authorization: Bearer {t}\"", "authorization: token {t}",
                "headers = {{'Authorization': 'Bearer {t}'}}"]:
        t = s(ALNUM, r.randrange(24, 48))
        lines.append(tpl.format(t=t))
        labels.append(("authorization-bearer", t, "plain", {}))
    for tpl in ["-H \"apikey: {u}\"", "X-Api-Key: {t}", "curl -H 'X-Octopus-ApiKey: {u}' https://octopus.acme.net/api"]:
        v = tpl.format(u=uuid(r), t=s(ALNUM, 32))
        sec = v.split(": ", 1)[1].split("'")[0].split('"')[0]
        lines.append(v)
        labels.append(("api-key-header", sec, "plain", {}))
    lines += ["X-Api-Key: ${API_KEY}", "apikey: my-service-api-key-name", "api-key: <your api key>",
              "Authorization: required_for_all_admin_endpoints"]
    lines += ["Authorization: Bearer $TOKEN", "Authorization: Bearer <token>", "authorization: bearer ${{ secrets.X }}",
              "Authorization: Bearer undefined_value_here"]
    c.add_file("providers/contexts/http-headers.txt", "\n".join(lines) + "\n", labels)
