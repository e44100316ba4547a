//! Provider credentials beyond the core table in `builtin.rs`: one rule per provider (or per
//! token family), written from the providers' published token formats. The provider list is
//! at least the one gitleaks' default configuration covers; the ids are airlock's own.
//!
//! Two shapes of rule:
//! - [`token`]: a format with a distinctive prefix or structure (`dop_v1_…`, `shpat_…`). These
//!   are [`Tier::Specific`] and match anywhere, whatever the key or context.
//! - [`keyed`]: a provider whose secrets have no prefix (a 32-character hex string), so only
//!   the key naming the provider (`ALGOLIA_ADMIN_KEY = …`) says what it is. These are
//!   [`Tier::Generic`] and listed after `generic-secret`, so where both match the same value
//!   the generic rule keeps reporting it (its ids are in existing audit logs); they add the
//!   values the generic rule does not catch (keys without `secret`/`token`, hex and UUIDs).
//!
//! Every rule has keywords, so the Aho-Corasick prefilter decides where its regex runs.

use crate::rule::{Check, Rule, Scope, Tier};

/// A token with a distinctive prefix or structure; reported in any context.
fn token(id: &str, description: &str, regex: &str, keywords: &[&str]) -> Rule {
    Rule::new(id, description, regex).with_keywords(keywords).tiered(Tier::Specific, Scope::Line, Check::None)
}

/// A provider's secret without a prefix, assigned to a key whose name contains one of `names`
/// (a regex alternation, matched case-insensitively): `key = "v"`, `key: v`, `"key": "v"`,
/// `KEY=v`, `key := "v"`, `'key' => 'v'`, `("key", "v")`. `value` is the secret's shape.
fn keyed(id: &str, description: &str, names: &str, keywords: &[&str], value: &str) -> Rule {
    let regex = format!(
        concat!(
            r#"(?i)(?:{names})[A-Za-z0-9_.\-]{{0,30}}["'\]]?(?:[ \t]+(?:string|str|String))?[ \t]*"#,
            r#"(?::{{1,3}}=|=>|\?\?=|\?=|\.=|=|:|,)[ \t]*["'`]?"#,
            r#"({value})(?:["'`\s;,)}}\]<>&]|\\[nrt]|$)"#,
        ),
        names = names,
        value = value,
    );
    Rule::new(id, description, regex).with_keywords(keywords).tiered(Tier::Generic, Scope::Line, Check::Keyed)
}

const UUID: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

/// Token formats with a prefix or structure, most specific first.
pub(crate) fn token_rules() -> Vec<Rule> {
    vec![
        token(
            "1password-secret-key",
            "1Password account secret key",
            r"\b(A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})\b",
            &["a3-"],
        ),
        token(
            "1password-service-account-token",
            "1Password service account token",
            r"\b(ops_eyJ[A-Za-z0-9+/]{250,}={0,3})",
            &["ops_eyj"],
        ),
        token("adobe-client-secret", "Adobe OAuth client secret", r"\b(p8e-[A-Za-z0-9]{32})\b", &["p8e-"]),
        token(
            "age-secret-key",
            "age encryption secret key",
            r"\b(AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})\b",
            &["age-secret-key-1"],
        ),
        // "pat" is too common a keyword; the regex's own literal scan is cheaper.
        Rule::new("airtable-pat", "Airtable personal access token", r"\b(pat[A-Za-z0-9]{14}\.[a-f0-9]{64})\b").tiered(
            Tier::Specific,
            Scope::Whole,
            Check::None,
        ),
        token("alibaba-access-key-id", "Alibaba Cloud AccessKey ID", r"\b(LTAI[A-Za-z0-9]{20})\b", &["ltai"]),
        token(
            "artifactory-token",
            "JFrog Artifactory API key or reference token",
            r"\b(AKCp[A-Za-z0-9]{69}|cmVmd[A-Za-z0-9]{59})\b",
            &["akcp", "cmvmd"],
        ),
        token("atlassian-api-token", "Atlassian API token", r"\b(ATATT3[A-Za-z0-9_=-]{186})", &["atatt3"]),
        token(
            "authress-access-key",
            "Authress service client access key",
            r"\b((?:sc|ext|scauth|authress)_[A-Za-z0-9]{5,30}\.[A-Za-z0-9]{4,6}\.acc[_-][A-Za-z0-9-]{10,32}\.[A-Za-z0-9+/_=-]{30,120})",
            &[".acc_", ".acc-"],
        ),
        token(
            "aws-bedrock-api-key",
            "Amazon Bedrock API key",
            r"\b(ABSK[A-Za-z0-9+/]{109,269}={0,2}|bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=%&?._-]{20,2000})",
            &["absk", "bedrock-api-key-"],
        ),
        token("clickhouse-api-secret", "ClickHouse Cloud API secret key", r"\b(4b1d[A-Za-z0-9]{38})\b", &["4b1d"]),
        token("clojars-api-token", "Clojars deploy token", r"\b(CLOJARS_[a-z0-9]{60})\b", &["clojars_"]),
        token(
            "cloudflare-origin-ca-key",
            "Cloudflare Origin CA key",
            r"\b(v1\.0-[a-f0-9]{24}-[a-f0-9]{146})\b",
            &["v1.0-"],
        ),
        token(
            "databricks-api-token",
            "Databricks personal access token",
            r"\b(dapi[a-f0-9]{32}(?:-[0-9])?)\b",
            &["dapi"],
        ),
        token(
            "defined-networking-api-token",
            "Defined Networking (Nebula) API key",
            r"\b(dnkey-[A-Za-z0-9=_-]{26}-[A-Za-z0-9=_-]{52})",
            &["dnkey-"],
        ),
        token(
            "digitalocean-token",
            "DigitalOcean personal access, OAuth or refresh token",
            r"\b(do[opr]_v1_[a-f0-9]{64})\b",
            &["dop_v1_", "doo_v1_", "dor_v1_"],
        ),
        token(
            "doppler-api-token",
            "Doppler API token",
            r"\b(dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9_-]{40,44})\b",
            &["dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim.", "dp.audit."],
        ),
        token(
            "dropbox-short-lived-token",
            "Dropbox short-lived access token",
            r"\b(sl\.[A-Za-z0-9_=-]{130,160})",
            &["sl."],
        ),
        token("duffel-api-token", "Duffel API token", r"\b(duffel_(?:test|live)_[A-Za-z0-9_=-]{43})", &["duffel_"]),
        token(
            "dynatrace-api-token",
            "Dynatrace API token",
            r"\b(dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64})\b",
            &["dt0c01."],
        ),
        token("easypost-api-token", "EasyPost API key", r"\b(EZ[AT]K[A-Za-z0-9]{54})\b", &["ezak", "eztk"]),
        token(
            "facebook-access-token",
            "Facebook (Meta) user or page access token",
            r"\b(EAA[BCDGIMSUZ][A-Za-z0-9]{100,})",
            &["eaab", "eaac", "eaad", "eaag", "eaai", "eaam", "eaas", "eaau", "eaaz"],
        ),
        token(
            "flutterwave-key",
            "Flutterwave secret, public or encryption key",
            r"\b(FLW(?:SECK|PUBK)(?:_TEST)?-[A-Za-z0-9]{32}-X|FLWSECK(?:_TEST)?[A-Za-z0-9]{12})",
            &["flwseck", "flwpubk"],
        ),
        token(
            "flyio-access-token",
            "Fly.io access token",
            r"\b(fo1_[A-Za-z0-9_-]{43}|fm1[ar]_[A-Za-z0-9+/]{100,}={0,3}|fm2_[A-Za-z0-9+/]{100,}={0,3})",
            &["fo1_", "fm1a_", "fm1r_", "fm2_"],
        ),
        token("frameio-api-token", "Frame.io API token", r"\b(fio-u-[A-Za-z0-9_=-]{64})", &["fio-u-"]),
        token(
            "gitlab-token",
            "GitLab deploy, runner, pipeline trigger, CI job, SCIM, feed, mail, agent, OAuth app or feature-flag token",
            concat!(
                r"\b(glptt-[0-9a-f]{40}|gldt-[0-9A-Za-z_-]{20,64}|glrt-[0-9A-Za-z_-]{20,300}(?:\.[0-9a-z]{9})?",
                r"|glsoat-[0-9A-Za-z_-]{20,64}|glcbt-[0-9A-Za-z]{1,5}_[0-9A-Za-z_-]{20,64}|glffct-[0-9A-Za-z_-]{20,64}",
                r"|glft-[0-9A-Za-z_-]{20,64}|glimt-[0-9A-Za-z_-]{25,64}|glagent-[0-9A-Za-z_-]{50,100}",
                r"|gloas-[0-9A-Za-z_-]{64,100}|GR1348941[0-9A-Za-z_-]{20,64}|_gitlab_session=[0-9a-z]{32})",
            ),
            &[
                "glptt-",
                "gldt-",
                "glrt-",
                "glsoat-",
                "glcbt-",
                "glffct-",
                "glft-",
                "glimt-",
                "glagent-",
                "gloas-",
                "gr1348941",
                "_gitlab_session=",
            ],
        ),
        token(
            "grafana-token",
            "Grafana API key, Cloud API token or service account token",
            r"\b(eyJrIjoi[A-Za-z0-9]{70,400}={0,3}|glc_[A-Za-z0-9+/]{32,400}={0,3}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})",
            &["eyjrijoi", "glc_", "glsa_"],
        ),
        token(
            "harness-api-key",
            "Harness personal or service account token",
            r"\b((?:pat|sat)\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20})\b",
            &["pat.", "sat."],
        ),
        token(
            "hashicorp-tf-api-token",
            "HashiCorp Terraform Cloud / Enterprise API token",
            r"\b([A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70})",
            &["atlasv1"],
        ),
        token(
            "vault-token",
            "HashiCorp Vault service, batch or recovery token",
            r"\b(hvs\.[A-Za-z0-9_-]{90,120}|hvb\.[A-Za-z0-9_-]{138,300}|hvr\.[A-Za-z0-9_-]{90,120})",
            &["hvs.", "hvb.", "hvr."],
        ),
        token("heroku-api-key-v2", "Heroku API key (HRKU- format)", r"\b(HRKU-AA[0-9A-Za-z_-]{58})", &["hrku-"]),
        token(
            "huggingface-org-token",
            "Hugging Face organization API token",
            r"\b(api_org_[A-Za-z]{34})\b",
            &["api_org_"],
        ),
        token("infracost-api-token", "Infracost API token", r"\b(ico-[A-Za-z0-9]{32})\b", &["ico-"]),
        token("intra42-client-secret", "42 Intra client secret", r"\b(s-s4t2(?:ud|af)-[a-f0-9]{64})\b", &["s-s4t2"]),
        token("linear-api-key", "Linear API key", r"\b(lin_api_[A-Za-z0-9]{40})\b", &["lin_api_"]),
        token("mailchimp-api-key", "Mailchimp API key", r"\b([a-f0-9]{32}-us[0-9]{1,2})\b", &["-us"]),
        token(
            "mapbox-secret-token",
            "Mapbox secret access token",
            r"\b(sk\.eyJ[A-Za-z0-9_-]{50,}\.[A-Za-z0-9_-]{20,})",
            &["sk.eyj"],
        ),
        token("maxmind-license-key", "MaxMind license key", r"\b([A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk)\b", &["_mmk"]),
        token(
            "microsoft-teams-webhook",
            "Microsoft Teams incoming webhook URL",
            r"(https://[a-z0-9-]+\.webhook\.office\.com/webhookb2/[a-f0-9-]{36}@[a-f0-9-]{36}/IncomingWebhook/[a-f0-9]{32}/[a-f0-9-]{36}(?:/[A-Za-z0-9_-]+)?)",
            &["webhook.office.com"],
        ),
        token(
            "new-relic-key",
            "New Relic user API, insert or browser key",
            r"\b(NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9_-]{32}|NRJS-[a-f0-9]{19})\b",
            &["nrak-", "nrii-", "nrjs-"],
        ),
        token("notion-api-token", "Notion integration token", r"\b(ntn_[0-9]{11}[A-Za-z0-9]{35})\b", &["ntn_"]),
        token(
            "nuget-config-password",
            "password in a NuGet.config packageSourceCredentials entry",
            r#"(?i)<add[ \t]+key="(?:ClearText)?Password"[ \t]+value="([^"]{8,})""#,
            &["<add key="],
        )
        .tiered(Tier::Specific, Scope::Line, Check::NamedPassword),
        token("octopus-deploy-api-key", "Octopus Deploy API key", r"\b(API-[A-Z0-9]{26})\b", &["api-"]),
        token(
            "openshift-user-token",
            "OpenShift user token",
            r"\b(sha256~[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)",
            &["sha256~"],
        ),
        token("perplexity-api-key", "Perplexity API key", r"\b(pplx-[A-Za-z0-9]{48})\b", &["pplx-"]),
        token(
            "plaid-access-token",
            "Plaid access token",
            &format!(r"\b(access-(?:sandbox|development|production)-{UUID})\b"),
            &["access-sandbox-", "access-development-", "access-production-"],
        ),
        token(
            "planetscale-token",
            "PlanetScale API, OAuth token or database password",
            r"\b(pscale_(?:tkn|oauth|pw)_[A-Za-z0-9_=.-]{32,64})",
            &["pscale_"],
        ),
        token("postman-api-token", "Postman API key", r"\b(PMAK-[a-f0-9]{24}-[a-f0-9]{34})\b", &["pmak-"]),
        token("prefect-api-token", "Prefect API key", r"\b(pnu_[A-Za-z0-9]{36})\b", &["pnu_"]),
        token("pulumi-api-token", "Pulumi access token", r"\b(pul-[a-f0-9]{40})\b", &["pul-"]),
        token("readme-api-token", "ReadMe API key", r"\b(rdme_[a-z0-9]{70})\b", &["rdme_"]),
        token("rubygems-api-token", "RubyGems API key", r"\b(rubygems_[a-f0-9]{48})\b", &["rubygems_"]),
        token("scalingo-api-token", "Scalingo API token", r"\b(tk-us-[A-Za-z0-9_-]{48})", &["tk-us-"]),
        token(
            "sendinblue-api-key",
            "Brevo (Sendinblue) API or SMTP key",
            r"\b(x(?:keysib|smtpsib)-[a-f0-9]{64}-[A-Za-z0-9]{16})\b",
            &["xkeysib-", "xsmtpsib-"],
        ),
        token(
            "sentry-token",
            "Sentry user auth token or organization token",
            r"\b(sntryu_[a-f0-9]{64}|sntrys_eyJpYXQiO[A-Za-z0-9+/=]{40,400}_[A-Za-z0-9+/]{43})",
            &["sntryu_", "sntrys_"],
        ),
        token(
            "settlemint-token",
            "SettleMint application, personal or service access token",
            r"\b(sm_(?:aat|pat|sat)_[A-Za-z0-9]{16})\b",
            &["sm_aat_", "sm_pat_", "sm_sat_"],
        ),
        token("shippo-api-token", "Shippo API token", r"\b(shippo_(?:live|test)_[a-fA-F0-9]{40})\b", &["shippo_"]),
        token(
            "shopify-token",
            "Shopify access token, custom or private app token, or shared secret",
            r"\b(shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})\b",
            &["shpat_", "shpca_", "shppa_", "shpss_"],
        ),
        token("slack-app-token", "Slack app-level token", r"\b(xapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]+)\b", &["xapp-"]),
        token(
            "sonar-token",
            "SonarQube / SonarCloud user, project or analysis token",
            r"\b(sq[upa]_[A-Za-z0-9]{40})\b",
            &["squ_", "sqp_", "sqa_"],
        ),
        token(
            "sourcegraph-access-token",
            "Sourcegraph access token",
            r"\b(sgp_(?:[a-fA-F0-9]{16}|local)_[a-fA-F0-9]{40}|sgp_[a-fA-F0-9]{40})\b",
            &["sgp_"],
        ),
        token(
            "square-token",
            "Square access token or OAuth secret",
            r"\b(sq0atp-[A-Za-z0-9_-]{22,60}|sq0csp-[A-Za-z0-9_-]{43}|EAAA[A-Za-z0-9_-]{60})(?:[^A-Za-z0-9_-]|$)",
            &["sq0atp-", "sq0csp-", "eaaa"],
        ),
        token("stripe-webhook-secret", "Stripe webhook signing secret", r"\b(whsec_[A-Za-z0-9]{32,64})\b", &["whsec_"]),
        // Bot tokens are `<bot id>:AA<33 characters>` wherever they appear.
        token(
            "telegram-bot-token",
            "Telegram bot API token",
            r"\b([0-9]{8,10}:AA[A-Za-z0-9_-]{33})(?:[^A-Za-z0-9_-]|$)",
            &[":aa"],
        ),
        token("typeform-api-token", "Typeform personal access token", r"\b(tfp_[A-Za-z0-9_.=-]{59})", &["tfp_"]),
        token(
            "yandex-token",
            "Yandex Cloud IAM token or API key",
            r"\b(t1\.[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]{86}={0,2}|AQVN[A-Za-z0-9_-]{35,38})(?:[^A-Za-z0-9_-]|$)",
            &["t1.", "aqvn"],
        ),
        token(
            "docker-config-auth",
            "credentials in a docker config.json `auths` entry (base64 of user:password)",
            r#""auth"[ \t]*:[ \t]*"([A-Za-z0-9+/]{8,}={0,2})""#,
            &["\"auth\""],
        )
        // The whole value is the credential: it wins over a token found inside its decoding.
        .tiered(Tier::Block, Scope::Line, Check::BasicAuth),
        token(
            "basic-auth",
            "HTTP Basic credentials (`Authorization: Basic <base64 of user:password>`)",
            r"(?i)\bbasic[ \t]+([A-Za-z0-9+/]{8,}={0,2})(?:[^A-Za-z0-9+/=]|$)",
            &["basic"],
        )
        .tiered(Tier::Block, Scope::Line, Check::BasicAuth),
        token(
            "url-credentials",
            "password in a URL's user information (`https://user:token@host`)",
            r#"(?i)\b[a-z][a-z0-9+.-]{1,20}://[^:@/\s'"<>]{0,128}:([^@/\s'"<>]{3,256})@[A-Za-z0-9\[]"#,
            &["://"],
        )
        .tiered(Tier::Specific, Scope::Line, Check::UrlPassword),
        // A `.netrc` entry may span lines: the rule runs from `machine` on.
        Rule::new(
            "netrc-password",
            "password of a .netrc `machine` entry",
            r"(?:machine[ \t]+[^\s]+|default)(?:\s+(?:login|account|port)[ \t]+[^\s]+){0,3}\s+password[ \t]+([^\s]+)",
        )
        .with_keywords(&["machine"])
        .tiered(Tier::Specific, Scope::FromHit, Check::NamedPassword),
        // `curl -u user:password`, also on a continuation line (`\` then `  --user …`).
        token(
            "curl-user-password",
            "credentials on a curl command line (`curl -u user:password`)",
            concat!(
                r#"(?m)(?:\bcurl\b[^\n]{0,512}?[ \t](?:-u|--user)|^[ \t]*(?:-u|--user)|[ \t]--user)(?:[ \t]+|=)"#,
                r#"(?:"([^"\s$]{0,64}:[^"\s]{0,128})"|'([^'\s$]{0,64}:[^'\s]{0,128})'|([^\s:"'$]{1,64}:(?:'[^'\s]{3,128}'|"[^"\s]{3,128}"|[^\s"']{3,128})))"#,
            ),
            &["curl", "--user", "-u "],
        )
        .tiered(Tier::Specific, Scope::Line, Check::NamedPassword),
        // `apikey: <uuid>`, `X-Octopus-ApiKey: …`: an HTTP header naming an API key. The
        // generic rule skips UUIDs (usually identifiers); under this header they are keys.
        Rule::new(
            "api-key-header",
            "API key in an HTTP header (`apikey:`, `X-Api-Key:`, `X-…-ApiKey:`)",
            r#"(?im)(?:^|[\s"'])(?:x-[a-z0-9-]*)?api-?key["']?[ \t]*:[ \t]*["']?([A-Za-z0-9._~+/-]{16,200})(?:["'\s,;]|$)"#,
        )
        .with_keywords(&["apikey", "api-key"])
        .tiered(Tier::Contextual, Scope::Line, Check::Keyed),
        Rule::new(
            "authorization-bearer",
            "opaque bearer token in an Authorization header",
            r#"(?i)\bauthorization["']?[ \t]*[:=][ \t]*["']?(?:(?:bearer|token|api-token|apikey|api-key)[ \t]+)?([A-Za-z0-9._~+/-]{16,}=*)"#,
        )
        .with_keywords(&["authorization"])
        .tiered(Tier::Contextual, Scope::Line, Check::Keyed),
    ]
}

/// Provider secrets recognised by the key that names them. Listed after `generic-secret`.
pub(crate) fn keyed_rules() -> Vec<Rule> {
    vec![
        keyed("adafruit-api-key", "Adafruit IO key", "adafruit", &["adafruit"], "[a-z0-9_-]{32}"),
        keyed("adobe-client-id", "Adobe client id / API key", "adobe", &["adobe"], "[a-f0-9]{32}"),
        keyed("airtable-api-key", "Airtable legacy API key", "airtable", &["airtable"], "key[a-z0-9]{14}|[a-z0-9]{17}"),
        keyed("algolia-api-key", "Algolia admin or API key", "algolia", &["algolia"], "[a-z0-9]{32}"),
        keyed(
            "alibaba-secret-key",
            "Alibaba Cloud AccessKey secret",
            "alibaba|aliyun",
            &["alibaba", "aliyun"],
            "[a-z0-9]{30}",
        ),
        keyed(
            "asana-secret",
            "Asana client secret or personal access token",
            "asana",
            &["asana"],
            "[0-9]/[0-9]{16}:[a-z0-9]{32}|[0-9]{16}:[a-z0-9]{32}|[a-z0-9]{32}",
        ),
        keyed(
            "atlassian-keyed-token",
            "Atlassian, Jira or Confluence API token",
            "atlassian|confluence|jira",
            &["atlassian", "confluence", "jira"],
            "[a-z0-9]{24}",
        ),
        keyed("beamer-api-token", "Beamer API key", "beamer", &["beamer"], "b_[a-z0-9=_-]{44}"),
        keyed(
            "bitbucket-secret",
            "Bitbucket client secret or app password",
            "bitbucket",
            &["bitbucket"],
            "[a-z0-9=_-]{64}|[a-z0-9]{32}|ATBB[a-z0-9]{28,40}",
        ),
        keyed("bittrex-key", "Bittrex API key or secret", "bittrex", &["bittrex"], "[a-z0-9]{32}"),
        keyed("cisco-meraki-api-key", "Cisco Meraki API key", "meraki", &["meraki"], "[0-9a-f]{40}"),
        keyed(
            "cloudflare-api-key",
            "Cloudflare API token or global API key",
            "cloudflare|cf_api",
            &["cloudflare", "cf_api"],
            "[a-z0-9_-]{40}|[a-f0-9]{37}",
        ),
        keyed(
            "codecov-access-token",
            "Codecov upload or access token",
            "codecov",
            &["codecov"],
            &format!("{UUID}|[a-z0-9]{{32}}"),
        ),
        keyed("cohere-api-token", "Cohere API key", "cohere|co_api_key", &["cohere", "co_api_key"], "[a-z0-9]{40}"),
        keyed(
            "coinbase-access-token",
            "Coinbase API key or secret",
            "coinbase",
            &["coinbase"],
            "[a-z0-9_-]{64}|[a-z0-9]{16}",
        ),
        keyed(
            "confluent-key",
            "Confluent Cloud API key or secret",
            "confluent",
            &["confluent"],
            "[a-z0-9+/]{64}|[a-z0-9]{16}",
        ),
        keyed(
            "contentful-delivery-api-token",
            "Contentful delivery or management token",
            "contentful",
            &["contentful"],
            "CFPAT-[a-z0-9_-]{43}|[a-z0-9=_-]{43}",
        ),
        keyed(
            "datadog-access-token",
            "Datadog API or application key",
            "datadog|dd_api|dd_app",
            &["datadog", "dd_api", "dd_app"],
            "[a-z0-9]{40}|[a-f0-9]{32}",
        ),
        keyed(
            "discord-secret",
            "Discord bot token, client secret or public key",
            "discord",
            &["discord"],
            "[MN][a-z0-9_-]{23,25}\\.[a-z0-9_-]{6}\\.[a-z0-9_-]{27,38}|[a-f0-9]{64}|[a-z0-9=_-]{32}",
        ),
        keyed("droneci-access-token", "Drone CI access token", "drone", &["drone"], "[a-z0-9]{32}"),
        keyed(
            "dropbox-api-token",
            "Dropbox API or long-lived token",
            "dropbox",
            &["dropbox"],
            "[a-z0-9]{11}AAAAAAAAAA[a-z0-9_=-]{43}|[a-z0-9]{15}",
        ),
        keyed("etsy-access-token", "Etsy API key", "etsy", &["etsy"], "[a-z0-9]{24}"),
        token(
            "facebook-app-access-token",
            "Facebook app access token (`<app id>|<app secret>`)",
            r"\b([0-9]{15,16}(?:\||%7[Cc])[A-Za-z0-9_-]{27,40})\b",
            &["facebook", "graph.facebook.com", "fb_"],
        ),
        keyed(
            "facebook-secret",
            "Facebook (Meta) app secret",
            "facebook|fb_app|fb_secret",
            &["facebook", "fb_app", "fb_secret"],
            "[a-f0-9]{32}|[0-9]{15,16}[|%][a-z0-9_-]{27,40}",
        ),
        keyed("fastly-api-token", "Fastly API token", "fastly", &["fastly"], "[a-z0-9=_-]{32}"),
        keyed(
            "finicity-secret",
            "Finicity app key or partner secret",
            "finicity",
            &["finicity"],
            "[a-f0-9]{32}|[a-z0-9]{20}",
        ),
        keyed("finnhub-access-token", "Finnhub API key", "finnhub", &["finnhub"], "[a-z0-9]{20}"),
        keyed("flickr-access-token", "Flickr API key or secret", "flickr", &["flickr"], "[a-z0-9]{32}|[a-f0-9]{16}"),
        keyed("freshbooks-access-token", "FreshBooks access token", "freshbooks", &["freshbooks"], "[a-z0-9]{64}"),
        keyed("gitter-access-token", "Gitter access token", "gitter", &["gitter"], "[a-z0-9_-]{40}"),
        keyed(
            "gocardless-api-token",
            "GoCardless access token",
            "gocardless",
            &["gocardless"],
            "(?:live|sandbox)_[a-z0-9_=-]{40}",
        ),
        keyed("heroku-api-key", "Heroku API key or OAuth token", "heroku", &["heroku"], UUID),
        keyed(
            "hubspot-api-key",
            "HubSpot API key or private app token",
            "hubspot",
            &["hubspot"],
            &format!("pat-(?:na|eu)[0-9]-{UUID}|{UUID}"),
        ),
        keyed("intercom-api-key", "Intercom access token", "intercom", &["intercom"], "[a-z0-9=_-]{60}"),
        keyed(
            "jfrog-api-key",
            "JFrog API key or identity token",
            "jfrog|artifactory|bintray|xray",
            &["jfrog", "artifactory", "bintray", "xray"],
            "[a-z0-9]{73}|[a-z0-9]{64}",
        ),
        keyed("kraken-access-token", "Kraken API key or private key", "kraken", &["kraken"], "[a-z0-9/=_+-]{80,90}"),
        keyed(
            "kucoin-key",
            "KuCoin API key, secret or passphrase",
            "kucoin",
            &["kucoin"],
            &format!("{UUID}|[a-f0-9]{{24}}"),
        ),
        keyed(
            "launchdarkly-access-token",
            "LaunchDarkly access token or SDK key",
            "launchdarkly|launch_darkly",
            &["launchdarkly", "launch_darkly"],
            &format!("(?:api|sdk|mob)-{UUID}|[a-z0-9=_-]{{40}}"),
        ),
        keyed("linear-client-secret", "Linear OAuth client secret", "linear", &["linear"], "[a-f0-9]{32}"),
        keyed(
            "linkedin-client-secret",
            "LinkedIn client secret",
            "linked[_-]?in",
            &["linkedin", "linked_in", "linked-in"],
            "[a-z0-9]{16}",
        ),
        keyed("lob-api-key", "Lob API key", "lob", &["lob"], "(?:live|test)_(?:pub_[a-f0-9]{31}|[a-f0-9]{35})"),
        keyed("looker-client-secret", "Looker API client secret", "looker", &["looker"], "[a-z0-9]{24}"),
        keyed(
            "mailgun-key",
            "Mailgun API, public validation or webhook signing key",
            "mailgun",
            &["mailgun"],
            "key-[a-f0-9]{32}|pubkey-[a-f0-9]{32}|[a-h0-9]{32}-[a-h0-9]{8}-[a-h0-9]{8}",
        ),
        keyed("mapbox-token", "Mapbox access token", "mapbox", &["mapbox"], "pk\\.[a-z0-9_-]{60,}\\.[a-z0-9_-]{22}"),
        keyed("mattermost-access-token", "Mattermost access token", "mattermost", &["mattermost"], "[a-z0-9]{26}"),
        keyed(
            "messagebird-api-token",
            "MessageBird (Bird) API key",
            "message[_-]?bird",
            &["messagebird", "message_bird", "message-bird"],
            "[a-z0-9]{25}",
        ),
        keyed(
            "netlify-access-token",
            "Netlify access token",
            "netlify",
            &["netlify"],
            "nfp_[a-z0-9]{36,40}|[a-z0-9=_-]{40,46}",
        ),
        keyed(
            "new-relic-keyed",
            "New Relic license or API key",
            "new[_-]?relic",
            &["newrelic", "new_relic", "new-relic"],
            "[a-f0-9]{36}NRAL|[a-z0-9]{64}|[a-f0-9]{40}",
        ),
        keyed(
            "nytimes-access-token",
            "New York Times API key",
            "nytimes|new[_-]?york[_-]?times",
            &["nytimes", "newyorktimes", "new_york_times", "new-york-times"],
            "[a-z0-9=_-]{32}",
        ),
        keyed("okta-access-token", "Okta API token", "okta", &["okta"], "00[a-z0-9=_-]{40}"),
        keyed("plaid-secret", "Plaid client secret", "plaid", &["plaid"], "[a-z0-9]{30}"),
        keyed(
            "privateai-api-token",
            "Private AI API key",
            "private[_-]?ai",
            &["privateai", "private_ai", "private-ai"],
            "[a-z0-9]{32}",
        ),
        keyed("rapidapi-access-token", "RapidAPI key", "rapidapi|x-rapidapi", &["rapidapi"], "[a-z0-9_-]{50}"),
        keyed("sendbird-access-token", "Sendbird API token", "sendbird", &["sendbird"], "[a-f0-9]{40}"),
        keyed("sentry-access-token", "Sentry legacy auth token", "sentry", &["sentry"], "[a-f0-9]{64}"),
        keyed(
            "sidekiq-secret",
            "Sidekiq Pro / Enterprise gem credentials",
            "bundle_enterprise__contribsys__com|bundle_gems__contribsys__com",
            &["contribsys__com"],
            "[a-f0-9]{8}:[a-f0-9]{8}",
        ),
        keyed(
            "sourcegraph-keyed-token",
            "Sourcegraph access token (legacy, 40 hex)",
            "sourcegraph",
            &["sourcegraph"],
            "[a-f0-9]{40}",
        ),
        keyed("snyk-api-token", "Snyk API token", "snyk", &["snyk"], UUID),
        keyed("sonar-keyed-token", "SonarQube token", "sonar[_.-]?(?:login|token)", &["sonar"], "[a-z0-9=_-]{40}"),
        keyed("squarespace-access-token", "Squarespace API key", "squarespace", &["squarespace"], UUID),
        keyed("sumologic-key", "Sumo Logic access id or key", "sumo", &["sumo"], "[a-z0-9]{64}|su[a-z0-9]{12}"),
        keyed("travisci-access-token", "Travis CI access token", "travis", &["travis"], "[a-z0-9]{22}"),
        keyed("twitch-api-token", "Twitch API token or client secret", "twitch", &["twitch"], "[a-z0-9]{30}"),
        keyed(
            "twitter-secret",
            "Twitter (X) API key, secret, access token or bearer token",
            "twitter|x_api|x_consumer|x_access|x_bearer",
            &["twitter", "x_api", "x_consumer", "x_access", "x_bearer"],
            "A{22}[a-z0-9%]{80,120}|[0-9]{15,25}-[a-z0-9]{20,40}|[a-z0-9]{50}|[a-z0-9]{45}|[a-z0-9]{25}",
        ),
        keyed("yandex-keyed-token", "Yandex Cloud static access key", "yandex", &["yandex"], "YC[a-z0-9_-]{38}"),
        keyed("zendesk-secret-key", "Zendesk API token", "zendesk", &["zendesk"], "[a-z0-9]{40}"),
        // Unknown providers under a bare `key` (`var key = "…"`, `"key": "…"`): the generic
        // rule's key words do not include `key` alone. Keywords include the punctuation after
        // `key`, so `get(&key)` in ordinary code costs nothing.
        Rule::new(
            "key-assignment",
            "long random value quoted under a key named `key` or `…Key`",
            r#"(?i)\b[a-z0-9_.-]*key["'`]?\]?[ \t]*(?::=|=>|=|:)[ \t]*["'`]([A-Za-z0-9+/_=-]{20,200})["'`]"#,
        )
        .with_keywords(&["key\"", "key'", "key`", "key =", "key=", "key:", "key :"])
        .tiered(Tier::Generic, Scope::Line, Check::KeyAssignment),
    ]
}
