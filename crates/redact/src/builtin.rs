//! The built-in rule table. Ids are part of airlock's interface (placeholders, audit logs,
//! test corpora); change a regex freely, never an id.

use crate::rule::{Check, Rule, Scope, Tier};

/// Keywords that start an assignment heuristically naming a secret.
const ASSIGNMENT_KEYWORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "api.key",
    "access_key",
    "accesskey",
    "access-key",
    "private_key",
    "privatekey",
    "private-key",
    "signing_key",
    "signingkey",
    "signing-key",
    "encryption_key",
    "encryptionkey",
    "master_key",
    "masterkey",
];

/// Between a key and its value: closing quote or bracket, an optional type annotation
/// (`: &str`, `: string`), then `=`, `:`, `:=`, `=>`, ` is `, or `", "` in call-style pairs.
const ASSIGN: &str = concat!(
    r#"(?:["']?\]?[ \t]*(?::[ \t]*&?(?:'static[ \t]+)?[A-Za-z_][A-Za-z0-9_<>\[\].]{0,40}[ \t]*)?"#,
    r#"(?::=|=>|=|:|[ \t]is[ \t])|["'][ \t]*,)[ \t]*"#,
);

/// A call wrapping the value (`format!("{}{}", "…"`, `os.getenv("X", "…"`): the literal
/// argument is what gets reported.
const CALL: &str = r#"(?:[A-Za-z_][A-Za-z0-9_.:!]*\((?:"[^"\n]{0,16}",[ \t]*)?)?"#;

/// A value: double-quoted (JSON escapes allowed, optional `r`/`b`/`f`/`u` prefix, optionally
/// inside a call), single-quoted, backticked, or bare. A bare value must end at a delimiter,
/// so calls, indexing and templates (`f(x)`, `env["X"]`, `${X}`) never match and never cost a
/// capture search.
fn value_pattern() -> String {
    format!(
        r#"(?:{CALL}[rbfu]{{0,2}}"((?:[^"\s\\]|\\["\\/bfnrtu]){{8,256}})"|[rbfu]{{0,2}}'([^'\s\\]{{8,256}})'|`([^`\s\\]{{8,256}})`|([^\s"'`,;)\]}}<>=&(\[{{$][^\s"'`,;)\]}}<>&(\[{{]{{7,255}})(?:[\s"'`,;)\]}}<>&]|$))"#
    )
}

fn specific(id: &str, description: &str, regex: &str, keywords: &[&str]) -> Rule {
    Rule::new(id, description, regex).with_keywords(keywords).tiered(Tier::Specific, Scope::Line, Check::None)
}

fn checksummed(id: &str, description: &str, regex: &str, keywords: &[&str]) -> Rule {
    specific(id, description, regex, keywords).tiered(Tier::Specific, Scope::Line, Check::GithubChecksum)
}

/// All built-in rules, most specific first.
pub(crate) fn rules() -> Vec<Rule> {
    let mut rules = core_rules();
    // Provider tokens go before `generic-secret` (same-tier ties go to the earlier rule),
    // provider-keyed rules after it, so existing findings keep their rule ids.
    let generic = rules.iter().position(|r| r.id == "generic-secret").unwrap_or(rules.len());
    rules.splice(generic..generic, crate::providers::token_rules());
    rules.extend(crate::providers::keyed_rules());
    rules
}

/// The rules airlock started with; their ids are in audit logs and placeholders.
fn core_rules() -> Vec<Rule> {
    vec![
        specific(
            "aws-access-key-id",
            "AWS access key id",
            r"\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16})\b",
            &["akia", "asia", "abia", "acca", "a3t"],
        ),
        specific(
            "aws-secret-access-key",
            "AWS secret access key assigned near an aws/secret keyword",
            &format!(
                r#"(?im)[a-z0-9_.-]*(?:aws|secret)[a-z0-9_.-]*{ASSIGN}{CALL}[rb]?["']?([A-Za-z0-9/+]{{40}})(?:[^A-Za-z0-9/+=]|$)"#
            ),
            &["aws", "secret"],
        )
        .tiered(Tier::Specific, Scope::Line, Check::AwsSecret),
        Rule::new(
            "gcp-service-account",
            "private key of a Google Cloud service account JSON",
            r#""private_key"\s*:\s*"(-----BEGIN[^"]*PRIVATE KEY-----[^"]*)""#,
        )
        .with_keywords(&["\"private_key\""])
        .tiered(Tier::Container, Scope::FromHit, Check::None),
        specific("gcp-api-key", "Google Cloud API key", r"\b(AIza[0-9A-Za-z_-]{35})", &["aiza"]),
        specific(
            "azure-storage-key",
            "Azure storage account key (in a connection string or assigned to an azure/storage key)",
            &format!(r#"(?i)(?:AccountKey[ \t]*=[ \t]*|(?:azure|storage)[a-z0-9_.-]*{ASSIGN}["']?)([A-Za-z0-9+/]{{86}}==)"#),
            &["accountkey", "azure", "storage"],
        ),
        specific(
            "azure-client-secret",
            "Azure AD client secret",
            r"(?m)(?:^|[^A-Za-z0-9_~.-])([A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})(?:[^A-Za-z0-9_~.-]|$)",
            &["q~"],
        ),
        checksummed("github-pat", "GitHub personal access token (classic)", r"(ghp_[0-9A-Za-z]{36})", &["ghp_"]),
        specific(
            "github-fine-grained-pat",
            "GitHub fine-grained personal access token",
            r"(github_pat_[0-9A-Za-z_]{82})",
            &["github_pat_"],
        ),
        checksummed("github-oauth", "GitHub OAuth access token", r"(gho_[0-9A-Za-z]{36})", &["gho_"]),
        checksummed(
            "github-app-token",
            "GitHub App user/installation token",
            r"(gh[us]_[0-9A-Za-z]{36})",
            &["ghu_", "ghs_"],
        ),
        checksummed("github-refresh-token", "GitHub refresh token", r"(ghr_[0-9A-Za-z]{36,76})", &["ghr_"]),
        specific("gitlab-pat", "GitLab personal access token", r"(glpat-[0-9A-Za-z_-]{20,300}(?:\.[0-9a-z]{9})?)", &["glpat-"]),
        specific("slack-token", "Slack token", r"(xox[baprseo]-[0-9A-Za-z]{1,40}-[0-9A-Za-z-]{8,250})", &["xox"]),
        specific(
            "slack-webhook",
            "Slack incoming webhook URL",
            r"(https?://hooks\.slack\.com/(?:services/T[A-Za-z0-9_]{4,}/B[A-Za-z0-9_]{4,}/[A-Za-z0-9]{16,}|(?:workflows|triggers)/[A-Za-z0-9+/_-]{20,}))",
            &["hooks.slack.com"],
        ),
        specific(
            "stripe-key",
            "Stripe secret or restricted key",
            r"\b((?:sk|rk)_(?:live|test|prod)_[0-9A-Za-z]{24,247})",
            &["sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_"],
        ),
        // No keyword: "sk" is everywhere in prose and code, and the regex's own literal
        // prefilter on the case-sensitive `SK` is faster than windows around every "sk".
        Rule::new("twilio-api-key", "Twilio API key", r"\b(SK[0-9a-fA-F]{32})\b").tiered(
            Tier::Specific,
            Scope::Whole,
            Check::None,
        ),
        specific(
            "sendgrid-api-key",
            "SendGrid API key",
            r"(SG\.[0-9A-Za-z_-]{22}\.[0-9A-Za-z_-]{43})",
            &["sg."],
        ),
        specific(
            "openai-api-key",
            "OpenAI API key",
            r"(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,300}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})",
            &["sk-proj-", "sk-svcacct-", "sk-admin-", "t3blbkfj"],
        ),
        specific(
            "anthropic-api-key",
            "Anthropic API or admin key",
            r"(sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{80,120})",
            &["sk-ant-"],
        ),
        specific("huggingface-token", "Hugging Face access token", r"\b(hf_[A-Za-z]{34})\b", &["hf_"]),
        checksummed("npm-token", "npm access token", r"\b(npm_[A-Za-z0-9]{36})\b", &["npm_"]),
        specific(
            "pypi-token",
            "PyPI upload token",
            r"(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000})",
            &["pypi-ageichlwas5vcmc"],
        ),
        specific("dockerhub-pat", "Docker Hub personal access token", r"(dckr_pat_[A-Za-z0-9_-]{27,64})", &["dckr_pat_"]),
        specific(
            "jwt",
            "JSON Web Token",
            r"\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})",
            &["eyj"],
        )
        .tiered(Tier::Specific, Scope::Line, Check::Jwt),
        Rule::new(
            "private-key",
            "PEM or PGP private key block",
            concat!(
                r"(-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----",
                r"(?:(?s:.){32,}?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----",
                // A truncated block (no END) is still redacted when only key material follows.
                r"|[A-Za-z0-9+/=\s\\:,.-]{40,}\z))",
            ),
        )
        .with_keywords(&["-----begin"])
        .tiered(Tier::Block, Scope::FromHit, Check::PemBody),
        Rule::new(
            "database-url",
            "password in a database or broker connection URL",
            r#"(?i)\b(?:postgres(?:ql)?|mysql|mongodb(?:\+srv)?|rediss?|amqps?|mssql)://[^:@/\s'"]*:([^@/\s'"]+)@"#,
        )
        .with_keywords(&["postgres", "mysql", "mongodb", "redis", "amqp", "mssql"])
        .tiered(Tier::Specific, Scope::Line, Check::UrlPassword),
        Rule::new(
            "generic-secret",
            "high-entropy value assigned to a key naming a password, secret, token or key",
            format!(
                "(?i)[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_.-]?key|access[_.-]?key|private[_.-]?key|signing[_.-]?key|encryption[_.-]?key|master[_.-]?key)[a-z0-9_.-]*{ASSIGN}{}",
                value_pattern()
            ),
        )
        .with_keywords(ASSIGNMENT_KEYWORDS)
        .tiered(Tier::Generic, Scope::Line, Check::Assignment),
        // No keywords: the rule only runs on `.env` files, which are small, and its key words
        // ("key", "auth", "pass") would flood the keyword prefilter on ordinary code.
        Rule::new(
            "dotenv-secret",
            "value of a sensitive KEY=VALUE line in a .env file",
            concat!(
                r#"(?m)^[ \t]*(?:export[ \t]+)?(?i:[A-Za-z0-9_.-]*(?:key|secret|token|password|pass|pwd|credential|auth|private)[A-Za-z0-9_.-]*)"#,
                r#"[ \t]*=[ \t]*(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"'#][^\s]*))"#,
            ),
        )
        .with_path(r"(?:^|/)(?:\.env(?:\.[^/]*)?|[^/]*\.env)$")
        .tiered(Tier::Contextual, Scope::Whole, Check::Dotenv),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use crate::{Encoding, Scanner};

    /// A deterministic pseudo-random string over `alphabet` (fixtures are built, not pasted, so
    /// no scanner flags this file).
    pub(crate) fn random(alphabet: &str, len: usize, seed: u64) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chars[(x % chars.len() as u64) as usize]
            })
            .collect()
    }

    const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    /// `prefix` + 30 random characters + their CRC32 tail, like real GitHub / npm tokens.
    pub(crate) fn checksummed(prefix: &str, seed: u64) -> String {
        let body = random(ALNUM, 30, seed);
        let tail = crate::checks::github_checksum(body.as_bytes());
        format!("{prefix}{body}{}", std::str::from_utf8(&tail).unwrap_or_default())
    }

    const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /// (rule id, text containing the secret, the secret).
    pub(crate) fn positives() -> Vec<(&'static str, String, String)> {
        let mut v: Vec<(&str, String, String)> = Vec::new();
        let mut add = |id: &'static str, template: &str, secret: String| {
            v.push((id, template.replace("{}", &secret), secret));
        };
        add(
            "aws-access-key-id",
            "aws_access_key_id = {}\n",
            format!("AKIA{}", random("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 1)),
        );
        add(
            "aws-access-key-id",
            "\"AccessKeyId\": \"{}\"",
            format!("ASIA{}", random("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 2)),
        );
        add("aws-secret-access-key", "aws_secret_access_key = {}\n", random(B64, 40, 3));
        add("aws-secret-access-key", "export AWS_SECRET_ACCESS_KEY=\"{}\"", random(B64, 40, 4));
        let pem_body = format!("MIIEvQIBADANBg{}\\n{}\\n", random(B64, 50, 5), random(B64, 64, 6));
        let gcp_key = format!("-----BEGIN PRIVATE KEY-----\\n{pem_body}-----END PRIVATE KEY-----\\n");
        add(
            "gcp-service-account",
            "{\n  \"type\": \"service_account\",\n  \"project_id\": \"demo\",\n  \"private_key_id\": \"abc\",\n  \"private_key\": \"{}\",\n  \"client_email\": \"x@demo.iam.gserviceaccount.com\"\n}\n",
            gcp_key,
        );
        add("gcp-api-key", "const key = \"{}\";", format!("AIza{}", random(B64URL, 35, 7)));
        add(
            "azure-storage-key",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={};EndpointSuffix=core.windows.net",
            format!("{}==", random(B64, 86, 8)),
        );
        add(
            "azure-client-secret",
            "AZURE_CLIENT_SECRET={}\n",
            format!("{}8Q~{}", random(ALNUM, 3, 9), random(ALNUM, 34, 10)),
        );
        add("github-pat", "token: {}\n", checksummed("ghp_", 11));
        add("github-fine-grained-pat", "GH={}", format!("github_pat_{}", random(ALNUM, 82, 12)));
        add("github-oauth", "oauth {} end", checksummed("gho_", 13));
        add("github-app-token", "x-access-token:{}@github.com", checksummed("ghs_", 14));
        add("github-app-token", "{}", checksummed("ghu_", 15));
        add("github-refresh-token", "refresh={}", checksummed("ghr_", 16));
        add("gitlab-pat", "GITLAB_TOKEN {}", format!("glpat-{}", random(ALNUM, 20, 17)));
        add(
            "slack-token",
            "SLACK_BOT = '{}'",
            format!("xoxb-{}-{}-{}", random("0123456789", 12, 18), random("0123456789", 13, 19), random(ALNUM, 24, 20)),
        );
        add(
            "slack-webhook",
            "url: {}\n",
            format!(
                "https://hooks.slack.com/services/T{}/B{}/{}",
                random("ABCDEFGHIJ0123456789", 8, 21),
                random("ABCDEFGHIJ0123456789", 10, 22),
                random(ALNUM, 24, 23)
            ),
        );
        add("stripe-key", "Stripe.api_key = \"{}\"", format!("sk_live_{}", random(ALNUM, 24, 24)));
        add("stripe-key", "{}", format!("rk_live_{}", random(ALNUM, 30, 25)));
        add("twilio-api-key", "twilio sid {} ok", format!("SK{}", random("0123456789abcdef", 32, 26)));
        add("sendgrid-api-key", "SENDGRID={}", format!("SG.{}.{}", random(B64URL, 22, 27), random(B64URL, 43, 28)));
        add(
            "openai-api-key",
            "OPENAI_API_KEY={}\n",
            format!("sk-proj-{}T3BlbkFJ{}", random(B64URL, 60, 29), random(B64URL, 60, 30)),
        );
        add("openai-api-key", "key = '{}'", format!("sk-{}T3BlbkFJ{}", random(ALNUM, 20, 31), random(ALNUM, 20, 32)));
        add("anthropic-api-key", "ANTHROPIC_API_KEY={}\n", format!("sk-ant-api03-{}AA", random(B64URL, 93, 33)));
        add("anthropic-api-key", "admin: {}", format!("sk-ant-admin01-{}AA", random(B64URL, 93, 34)));
        add(
            "huggingface-token",
            "HF_TOKEN={}",
            format!("hf_{}", random("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 34, 35)),
        );
        add("npm-token", "//registry.npmjs.org/:_authToken={}", checksummed("npm_", 36));
        add("pypi-token", "password = {}", format!("pypi-AgEIcHlwaS5vcmc{}", random(B64URL, 70, 37)));
        add("dockerhub-pat", "docker login -p {}", format!("dckr_pat_{}", random(B64URL, 27, 38)));
        add(
            "jwt",
            "Authorization: Bearer {}\n",
            format!("eyJhbGciOiJIUzI1NiJ9.eyJ{}.{}", random(B64URL, 40, 39), random(B64URL, 43, 40)),
        );
        let pem = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n{}\n-----END RSA PRIVATE KEY-----",
            random(B64, 64, 41),
            random(B64, 64, 42),
            random(B64, 20, 43)
        );
        add("private-key", "key:\n{}\nrest", pem);
        let openssh =
            format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----", random(B64, 70, 44));
        add("private-key", "{}\n", openssh);
        let pgp = format!(
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: x\n\n{}\n={}\n-----END PGP PRIVATE KEY BLOCK-----",
            random(B64, 64, 45),
            random(B64, 4, 46)
        );
        add("private-key", "{}", pgp);
        add("database-url", "DATABASE_URL=postgres://app:{}@db.internal:5432/app", random(ALNUM, 16, 47));
        add("database-url", "mongodb+srv://admin:{}@cluster0.mongodb.net/test", random(ALNUM, 12, 48));
        add("database-url", "redis://:{}@cache:6379/0", random(ALNUM, 20, 49));
        add("generic-secret", "password = \"{}\"\n", format!("{}!9", random(ALNUM, 14, 50)));
        add("generic-secret", "DB_PASSWORD={}\n", format!("{}7", random(ALNUM, 12, 51)));
        add("generic-secret", "  \"client_secret\": \"{}\",", random(ALNUM, 32, 52));
        add("generic-secret", "dbPassword: '{}'", format!("Zq{}", random(ALNUM, 10, 53)));
        add("generic-secret", "apiKey := \"{}\"", random(ALNUM, 24, 54));
        add("generic-secret", "'auth_token' => '{}',", random(ALNUM, 20, 55));
        v
    }

    pub(crate) fn negatives() -> Vec<&'static str> {
        vec![
            "id = \"123e4567-e89b-12d3-a456-426614174000\"",
            "commit da39a3ee5e6b4b0d3255bfef95601890afd80709 and e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "password = \"your_password_here\"",
            "api_key: <YOUR_API_KEY>",
            "token: ${GITHUB_TOKEN}",
            "secret = \"{{ vault_secret }}\"",
            "password = \"%s\" % pw",
            "password = os.environ[\"DB_PASSWORD\"]",
            "const token = process.env.GITHUB_TOKEN;",
            "token: ${{ secrets.GITHUB_TOKEN }}",
            "password = os.getenv(\"PASSWORD\")",
            "password = \"\"",
            "password: null",
            "password: String,",
            "token: Option<String>,",
            "password = get_password()",
            "let token = lexer.next_token()?;",
            "secret_key = settings.SECRET_KEY",
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.",
            "<img src=\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\">",
            "\"integrity\": \"sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXGOx2LmdlGmtJz1aYzLq4IBiuNkQ==\"",
            "token = «secret:github-pat:1»",
            "password: «secret:generic-secret:12»",
            "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "sk_live_xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "postgres://user:password@localhost/db",
            "postgres://user:${DB_PASSWORD}@localhost/db",
            "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
            "max_tokens = 100000000",
            "token_url = \"https://oauth2.googleapis.com/token\"",
            "grant_type = \"client_credentials\"",
            "secret_name = \"prod_database_password\"",
            "if password == expected_password_value {",
            "let hf_model_name_for_the_configuration = 1;",
            "task-runner disk-usage ask_user",
            "msg.send(); sg.config",
            // Contexts added for issue 14, in their harmless forms.
            "git@github.com:org/repo.git and https://user@example.com/ and http://localhost:8080/x",
            "Authorization: Basic dXNlcjpwYXNzd29yZA==",
            "Basic authentication is configured below.",
            "let value = cache.get(&key);",
            "\"key\": \"settings.notifications.emailDigestFrequency\",",
            "The machine learning model needs a password manager.",
            "heroku_region = \"us-east-1\"",
            "curl -u $USER:$TOKEN https://example.com",
            "\"auths\": {\"https://index.docker.io/v1/\": {}}, \"auth\": \"\"",
        ]
    }

    #[test]
    fn builtin_rules_compile() {
        let set = crate::RuleSet::builtin();
        Scanner::new(set).unwrap();
    }

    #[test]
    fn builtin_ids_are_the_documented_ones() {
        let set = crate::RuleSet::builtin();
        let ids = set.ids();
        for id in [
            "aws-access-key-id",
            "aws-secret-access-key",
            "gcp-service-account",
            "gcp-api-key",
            "azure-storage-key",
            "azure-client-secret",
            "github-pat",
            "github-fine-grained-pat",
            "github-oauth",
            "github-app-token",
            "github-refresh-token",
            "gitlab-pat",
            "slack-token",
            "slack-webhook",
            "stripe-key",
            "twilio-api-key",
            "sendgrid-api-key",
            "openai-api-key",
            "anthropic-api-key",
            "huggingface-token",
            "npm-token",
            "pypi-token",
            "dockerhub-pat",
            "jwt",
            "private-key",
            "database-url",
            "generic-secret",
            "dotenv-secret",
        ] {
            assert!(ids.contains(&id), "missing {id}");
        }
        let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate rule ids");
        assert_eq!(super::core_rules().len(), 28);
        assert_eq!(ids.len(), 28 + crate::providers::token_rules().len() + crate::providers::keyed_rules().len());
    }

    #[test]
    fn every_builtin_rule_finds_its_positive_examples() {
        let scanner = Scanner::builtin();
        let mut covered = std::collections::BTreeSet::new();
        for (id, text, secret) in positives() {
            let findings = scanner.scan(text.as_bytes());
            let hit = findings.iter().find(|f| text[f.range.clone()] == secret);
            assert!(hit.is_some(), "{id}: expected {secret:?} in {text:?}, got {findings:?}");
            assert_eq!(hit.unwrap().rule_id, id, "{text:?}");
            assert_eq!(hit.unwrap().encoding, Encoding::Plain);
            covered.insert(id);
        }
        covered.insert("dotenv-secret");
        assert_eq!(covered.len(), 28, "rules without positive examples");
    }

    #[test]
    fn builtin_negative_examples_are_not_reported() {
        let scanner = Scanner::builtin();
        for text in negatives() {
            let findings = scanner.scan(text.as_bytes());
            assert!(
                findings.is_empty(),
                "{text:?} -> {:?}",
                findings.iter().map(|f| (&f.rule_id, &text[f.range.clone()])).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn dotenv_rule_only_applies_to_env_files() {
        let scanner = Scanner::builtin();
        let text = "# comment\nexport API_KEY=abc123\nDEBUG=true\nAUTH_ENABLED=true\nSESSION_SECRET=\"q9Ls\"\nEMPTY_TOKEN=\nREF_PASSWORD=${OTHER}\nPORT=8080\n";
        let found: Vec<(String, &str)> = scanner
            .scan_file(Path::new("app/.env.local"), text.as_bytes())
            .into_iter()
            .map(|f| (f.rule_id, &text[f.range]))
            .collect();
        assert_eq!(found, vec![("dotenv-secret".to_string(), "abc123"), ("dotenv-secret".to_string(), "q9Ls")]);
        assert!(scanner.scan_file(Path::new("src/config.txt"), text.as_bytes()).is_empty());
        assert!(scanner.scan(text.as_bytes()).is_empty());
        assert_eq!(scanner.scan_file(Path::new("prod.env"), text.as_bytes()).len(), 2);
    }

    #[test]
    fn specific_rules_beat_generic_ones() {
        let scanner = Scanner::builtin();
        let token = checksummed("ghp_", 99);
        let text = format!("GITHUB_TOKEN=\"{token}\"\n");
        let findings = scanner.scan(text.as_bytes());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule_id, "github-pat");
        assert_eq!(&text[findings[0].range.clone()], token);
    }
}
