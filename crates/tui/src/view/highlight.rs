//! A small syntax highlighter for code blocks: keywords, strings, comments
//! and numbers of the languages a coding agent shows most. A lexer per
//! family of languages, not a grammar: wrong colours are possible, wrong
//! text is not (every character of the input is kept, in order).

use ratatui::style::Style;
use ratatui::text::Span;

use super::theme;

/// A language the highlighter knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Rust.
    Rust,
    /// Python.
    Python,
    /// JavaScript and TypeScript.
    JavaScript,
    /// Go.
    Go,
    /// C and C++.
    C,
    /// POSIX shell and bash.
    Shell,
    /// TOML.
    Toml,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// A unified diff.
    Diff,
}

impl Language {
    /// The language named by a code fence's info string (`rust`, `py`,
    /// `rust,ignore`, `ts title="x"`), if known.
    pub fn from_info(info: &str) -> Option<Language> {
        let name = info.split(|c: char| c == ',' || c == '{' || c.is_whitespace()).next().unwrap_or("");
        Some(match name.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Language::Rust,
            "python" | "py" | "python3" => Language::Python,
            "js" | "javascript" | "jsx" | "mjs" | "cjs" | "ts" | "typescript" | "tsx" => Language::JavaScript,
            "go" | "golang" => Language::Go,
            "c" | "h" | "cpp" | "c++" | "cc" | "cxx" | "hpp" => Language::C,
            "sh" | "bash" | "shell" | "zsh" | "console" => Language::Shell,
            "toml" => Language::Toml,
            "json" | "jsonc" | "json5" => Language::Json,
            "yaml" | "yml" => Language::Yaml,
            "diff" | "patch" => Language::Diff,
            _ => return None,
        })
    }

    fn keywords(self) -> &'static [&'static str] {
        match self {
            Language::Rust => &[
                "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "fn",
                "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
                "self", "Self", "static", "struct", "super", "trait", "type", "unsafe", "use", "where", "while",
                "yield",
            ],
            Language::Python => &[
                "and", "as", "assert", "async", "await", "break", "case", "class", "continue", "def", "del", "elif",
                "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "match",
                "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
            ],
            Language::JavaScript => &[
                "as",
                "async",
                "await",
                "break",
                "case",
                "catch",
                "class",
                "const",
                "continue",
                "debugger",
                "default",
                "delete",
                "do",
                "else",
                "enum",
                "export",
                "extends",
                "finally",
                "for",
                "from",
                "function",
                "if",
                "implements",
                "import",
                "in",
                "instanceof",
                "interface",
                "let",
                "new",
                "of",
                "private",
                "protected",
                "public",
                "readonly",
                "return",
                "static",
                "super",
                "switch",
                "this",
                "throw",
                "try",
                "type",
                "typeof",
                "var",
                "void",
                "while",
                "with",
                "yield",
            ],
            Language::Go => &[
                "break",
                "case",
                "chan",
                "const",
                "continue",
                "default",
                "defer",
                "else",
                "fallthrough",
                "for",
                "func",
                "go",
                "goto",
                "if",
                "import",
                "interface",
                "map",
                "package",
                "range",
                "return",
                "select",
                "struct",
                "switch",
                "type",
                "var",
            ],
            Language::C => &[
                "auto",
                "break",
                "case",
                "char",
                "class",
                "const",
                "constexpr",
                "continue",
                "default",
                "delete",
                "do",
                "double",
                "else",
                "enum",
                "extern",
                "float",
                "for",
                "goto",
                "if",
                "inline",
                "int",
                "long",
                "namespace",
                "new",
                "private",
                "protected",
                "public",
                "register",
                "return",
                "short",
                "signed",
                "sizeof",
                "static",
                "struct",
                "switch",
                "template",
                "this",
                "typedef",
                "typename",
                "union",
                "unsigned",
                "using",
                "virtual",
                "void",
                "volatile",
                "while",
            ],
            Language::Shell => &[
                "break", "case", "continue", "do", "done", "elif", "else", "esac", "exit", "export", "fi", "for",
                "function", "if", "in", "local", "readonly", "return", "select", "set", "shift", "then", "unset",
                "until", "while",
            ],
            Language::Toml | Language::Json | Language::Yaml | Language::Diff => &[],
        }
    }

    fn constants(self) -> &'static [&'static str] {
        match self {
            Language::Rust => &["true", "false", "None", "Some", "Ok", "Err"],
            Language::Python => &["True", "False", "None"],
            Language::JavaScript => &["true", "false", "null", "undefined", "NaN"],
            Language::Go => &["true", "false", "nil", "iota"],
            Language::C => &["true", "false", "NULL", "nullptr"],
            Language::Shell => &[],
            Language::Toml | Language::Json => &["true", "false", "null"],
            Language::Yaml => &["true", "false", "null", "yes", "no", "on", "off", "True", "False", "Null"],
            Language::Diff => &[],
        }
    }

    fn line_comment(self) -> &'static [&'static str] {
        match self {
            Language::Rust | Language::JavaScript | Language::Go | Language::C | Language::Json => &["//"],
            Language::Python | Language::Shell | Language::Toml | Language::Yaml => &["#"],
            Language::Diff => &[],
        }
    }

    fn block_comment(self) -> Option<(&'static str, &'static str)> {
        match self {
            Language::Rust | Language::JavaScript | Language::Go | Language::C | Language::Json => Some(("/*", "*/")),
            _ => None,
        }
    }

    fn quotes(self) -> &'static [char] {
        match self {
            Language::Rust | Language::C => &['"'],
            Language::Python | Language::Shell | Language::Toml | Language::Yaml => &['"', '\''],
            Language::JavaScript | Language::Go => &['"', '\'', '`'],
            Language::Json => &['"'],
            Language::Diff => &[],
        }
    }
}

/// What is open at the end of a line and continues on the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Nothing,
    BlockComment,
    /// A string, with its delimiter (repeated three times for `"""`).
    Text(char, bool),
}

/// `code` in `language` (None: plain), one span list per line of `code`.
/// The text must already be safe for the terminal (see `text::clean`).
pub fn highlight(language: Option<Language>, code: &str) -> Vec<Vec<Span<'static>>> {
    let Some(language) = language else {
        return code.split('\n').map(|l| vec![Span::raw(l.to_string())]).collect();
    };
    let mut open = Open::Nothing;
    code.split('\n')
        .map(|line| {
            if language == Language::Diff {
                return vec![diff_line(line)];
            }
            let mut out = Pieces::default();
            open = lex_line(language, line, open, &mut out);
            out.spans
        })
        .collect()
}

fn diff_line(line: &str) -> Span<'static> {
    let style = if line.starts_with("+++") || line.starts_with("---") {
        theme::TOOL
    } else if line.starts_with('+') {
        theme::ADDED
    } else if line.starts_with('-') {
        theme::REMOVED
    } else if line.starts_with("@@") {
        theme::HUNK
    } else {
        Style::new()
    };
    Span::styled(line.to_string(), style)
}

/// Spans being built, merging neighbours of one style.
#[derive(Default)]
struct Pieces {
    spans: Vec<Span<'static>>,
}

impl Pieces {
    fn push(&mut self, text: &[char], style: Style) {
        if text.is_empty() {
            return;
        }
        let text: String = text.iter().collect();
        match self.spans.last_mut() {
            Some(last) if last.style == style => last.content.to_mut().push_str(&text),
            _ => self.spans.push(Span::styled(text, style)),
        }
    }
}

fn starts(chars: &[char], at: usize, s: &str) -> bool {
    s.chars().enumerate().all(|(k, c)| chars.get(at + k) == Some(&c))
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Highlights one line, starting in `open`; returns what is open at its end.
fn lex_line(lang: Language, line: &str, open: Open, out: &mut Pieces) -> Open {
    let chars: Vec<char> = line.chars().collect();
    let n = chars.len();
    let mut i = 0;
    let mut plain_from = 0;
    macro_rules! flush_plain {
        () => {
            out.push(&chars[plain_from..i], Style::new());
        };
    }
    // Continue what the previous line left open.
    match open {
        Open::BlockComment => {
            let (_, close) = lang.block_comment().unwrap_or(("", "*/"));
            let end = (0..n).find(|&k| starts(&chars, k, close)).map(|k| k + close.len());
            let end = end.unwrap_or(n);
            out.push(&chars[..end], theme::COMMENT);
            if end == n && !line.ends_with(close) {
                return Open::BlockComment;
            }
            i = end;
            plain_from = i;
        }
        Open::Text(q, triple) => {
            let (end, closed) = string_end(&chars, 0, q, triple, lang);
            out.push(&chars[..end], theme::STRING);
            if !closed {
                return open;
            }
            i = end;
            plain_from = i;
        }
        Open::Nothing => {}
    }
    // Keys at the start of a line (YAML `key:`, TOML `key =`, `[section]`).
    if i == 0 && matches!(lang, Language::Yaml | Language::Toml) {
        let indent = chars.iter().take_while(|c| c.is_whitespace()).count();
        let mut k = indent;
        if lang == Language::Yaml && starts(&chars, k, "- ") {
            k += 2;
        }
        if lang == Language::Toml && chars.get(indent) == Some(&'[') {
            out.push(&chars[..n], theme::KEY);
            return Open::Nothing;
        }
        let key_end = (k..n).take_while(|&j| is_ident(chars[j]) || matches!(chars[j], '-' | '.')).last();
        if let Some(e) = key_end {
            let after = chars[e + 1..].iter().position(|c| !c.is_whitespace()).map(|p| e + 1 + p);
            let sep = if lang == Language::Yaml { ':' } else { '=' };
            if after.is_some_and(|a| chars[a] == sep) {
                out.push(&chars[..k], Style::new());
                out.push(&chars[k..=e], theme::KEY);
                i = e + 1;
                plain_from = i;
            }
        }
    }
    while i < n {
        let c = chars[i];
        let word_start = i == 0 || !is_ident(chars[i - 1]);
        // Comments.
        if let Some((start, _)) = lang.block_comment().filter(|(s, _)| starts(&chars, i, s)) {
            flush_plain!();
            let close = lang.block_comment().map_or("*/", |(_, c)| c);
            let end = (i + start.len()..n).find(|&k| starts(&chars, k, close)).map(|k| k + close.len());
            out.push(&chars[i..end.unwrap_or(n)], theme::COMMENT);
            match end {
                Some(e) => {
                    i = e;
                    plain_from = i;
                    continue;
                }
                None => return Open::BlockComment,
            }
        }
        // In shell and YAML a `#` starts a comment only after a space (`a#b` is a word).
        let hash_comment_ok =
            c != '#' || i == 0 || chars[i - 1].is_whitespace() || !matches!(lang, Language::Shell | Language::Yaml);
        if lang.line_comment().iter().any(|s| starts(&chars, i, s)) && hash_comment_ok {
            flush_plain!();
            out.push(&chars[i..], theme::COMMENT);
            return Open::Nothing;
        }
        // C preprocessor directives.
        if lang == Language::C && c == '#' && chars[..i].iter().all(|c| c.is_whitespace()) {
            flush_plain!();
            let end = (i + 1..n).find(|&k| !is_ident(chars[k])).unwrap_or(n);
            out.push(&chars[i..end], theme::KEYWORD);
            i = end;
            plain_from = i;
            continue;
        }
        // Strings.
        if lang.quotes().contains(&c) && !(c == '\'' && lang == Language::Rust) {
            flush_plain!();
            let triple = lang == Language::Python && starts(&chars, i, &c.to_string().repeat(3));
            let body = if triple { i + 3 } else { i + 1 };
            let (end, closed) = string_end(&chars, body, c, triple, lang);
            let style = if lang == Language::Json && is_json_key(&chars, end) { theme::KEY } else { theme::STRING };
            out.push(&chars[i..end], style);
            i = end;
            plain_from = i;
            if !closed && (triple || c == '`' || lang == Language::Rust) {
                return Open::Text(c, triple);
            }
            continue;
        }
        // Rust: a char literal ('a', '\n'), not a lifetime ('a).
        if c == '\'' && lang == Language::Rust {
            let end = if chars.get(i + 1) == Some(&'\\') {
                (i + 2..n).find(|&k| chars[k] == '\'').map(|k| k + 1)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            if let Some(end) = end {
                flush_plain!();
                out.push(&chars[i..end], theme::STRING);
                i = end;
                plain_from = i;
                continue;
            }
        }
        // Numbers.
        if c.is_ascii_digit() && word_start {
            flush_plain!();
            let mut end = i + 1;
            while end < n
                && (is_ident(chars[end]) || (chars[end] == '.' && chars.get(end + 1).is_some_and(char::is_ascii_digit)))
            {
                end += 1;
            }
            out.push(&chars[i..end], theme::NUMBER);
            i = end;
            plain_from = i;
            continue;
        }
        // Words.
        if is_ident(c) && word_start {
            let end = (i..n).find(|&k| !is_ident(chars[k])).unwrap_or(n);
            let word: String = chars[i..end].iter().collect();
            let style = if lang.keywords().contains(&word.as_str()) {
                Some(theme::KEYWORD)
            } else if lang.constants().contains(&word.as_str()) {
                Some(theme::NUMBER)
            } else {
                None
            };
            if let Some(style) = style {
                flush_plain!();
                out.push(&chars[i..end], style);
                plain_from = end;
            }
            i = end;
            continue;
        }
        i += 1;
    }
    flush_plain!();
    Open::Nothing
}

/// Where the string whose body starts at `from` ends (after its closing
/// quote), and whether it closed on this line.
fn string_end(chars: &[char], from: usize, q: char, triple: bool, lang: Language) -> (usize, bool) {
    // Single quotes in shell and TOML are literal: a backslash is itself.
    let escapes = !(q == '\'' && matches!(lang, Language::Shell | Language::Toml));
    let mut k = from;
    while k < chars.len() {
        if chars[k] == '\\' && escapes {
            k += 2;
            continue;
        }
        if chars[k] == q && (!triple || (chars.get(k + 1) == Some(&q) && chars.get(k + 2) == Some(&q))) {
            return (if triple { k + 3 } else { k + 1 }, true);
        }
        k += 1;
    }
    (chars.len(), false)
}

fn is_json_key(chars: &[char], after: usize) -> bool {
    chars[after.min(chars.len())..].iter().find(|c| !c.is_whitespace()) == Some(&':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn styled(lang: &str, code: &str) -> Vec<(String, Style)> {
        highlight(Language::from_info(lang), code)
            .into_iter()
            .flatten()
            .map(|s| (s.content.into_owned(), s.style))
            .collect()
    }

    fn style_of(spans: &[(String, Style)], text: &str) -> Option<Style> {
        spans.iter().find(|(t, _)| t == text).map(|(_, s)| *s)
    }

    #[test]
    fn every_character_is_kept_in_order() {
        for (lang, code) in [
            ("rust", "fn main() { let s = \"a\\\"b\"; /* c */ 'x' 'a 0x1f }\n// end"),
            ("python", "def f(x):\n    \"\"\"doc\n    more\"\"\"\n    return 'a' # c"),
            ("sh", "echo \"$HOME\" # note\nls -la | grep x#y"),
            ("c", "#include <stdio.h>\nint main() { /* open\n still */ return 0; }"),
            ("yaml", "key: 'v' # c\n- item: 3"),
            ("toml", "[section]\nname = \"x\" # c"),
            ("json", "{\"a\": [1, true, null]}"),
            ("js", "const t = `a\nb`; // c"),
            ("go", "func main() { x := 1.5 }"),
            ("diff", "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y"),
        ] {
            let joined: String = highlight(Language::from_info(lang), code)
                .iter()
                .map(|line| line.iter().map(|s| s.content.as_ref()).collect::<String>())
                .collect::<Vec<_>>()
                .join("\n");
            assert_eq!(joined, code, "{lang}");
        }
    }

    #[test]
    fn rust_keywords_strings_comments_numbers() {
        let s = styled("rust", "pub fn f() -> u8 { let s = \"fn\"; 42 } // fn");
        assert_eq!(style_of(&s, "pub"), Some(theme::KEYWORD));
        assert_eq!(style_of(&s, "fn"), Some(theme::KEYWORD));
        assert_eq!(style_of(&s, "\"fn\""), Some(theme::STRING));
        assert_eq!(style_of(&s, "42"), Some(theme::NUMBER));
        assert_eq!(style_of(&s, "// fn"), Some(theme::COMMENT));
    }

    #[test]
    fn rust_lifetimes_are_not_strings() {
        let s = styled("rust", "fn f<'a>(x: &'a str) -> char { 'z' }");
        assert!(s.iter().all(|(t, st)| !(t.contains("'a") && *st == theme::STRING)), "{s:?}");
        assert_eq!(style_of(&s, "'z'"), Some(theme::STRING));
    }

    #[test]
    fn block_comments_and_triple_quotes_span_lines() {
        let lines = highlight(Some(Language::C), "/* a\nb */ int x;");
        assert_eq!(lines[1][0].style, theme::COMMENT);
        assert_eq!(lines[1][0].content, "b */");
        let lines = highlight(Some(Language::Python), "x = \"\"\"a\nb\"\"\" if y");
        assert_eq!(lines[1][0].style, theme::STRING);
        assert!(lines[1].iter().any(|s| s.content == "if" && s.style == theme::KEYWORD));
    }

    #[test]
    fn shell_hash_inside_a_word_is_not_a_comment() {
        let s = styled("bash", "echo a#b # real");
        assert_eq!(style_of(&s, "# real"), Some(theme::COMMENT));
        assert!(!s.iter().any(|(t, st)| t.contains("#b") && *st == theme::COMMENT));
    }

    #[test]
    fn yaml_hash_inside_a_value_is_not_a_comment() {
        let s = styled("yaml", "url: http://x/#frag # note");
        assert_eq!(style_of(&s, "# note"), Some(theme::COMMENT));
        assert!(!s.iter().any(|(t, st)| t.contains("#frag") && *st == theme::COMMENT), "{s:?}");
    }

    #[test]
    fn backtick_strings_span_lines() {
        let lines = highlight(Some(Language::JavaScript), "const t = `a\nb` + x; // c");
        assert_eq!(lines[1][0].style, theme::STRING);
        assert_eq!(lines[1][0].content, "b`");
        assert!(lines[1].iter().any(|s| s.content == "// c" && s.style == theme::COMMENT));
    }

    #[test]
    fn keys_in_data_languages() {
        assert_eq!(style_of(&styled("json", "{\"name\": \"x\"}"), "\"name\""), Some(theme::KEY));
        assert_eq!(style_of(&styled("json", "{\"name\": \"x\"}"), "\"x\""), Some(theme::STRING));
        assert_eq!(style_of(&styled("yaml", "name: x"), "name"), Some(theme::KEY));
        assert_eq!(style_of(&styled("toml", "name = 1"), "name"), Some(theme::KEY));
        assert_eq!(style_of(&styled("toml", "[deps]"), "[deps]"), Some(theme::KEY));
    }

    #[test]
    fn unknown_languages_are_plain() {
        assert_eq!(Language::from_info("brainfuck"), None);
        assert_eq!(Language::from_info("rust,ignore"), Some(Language::Rust));
        let lines = highlight(None, "fn main");
        assert_eq!(lines, vec![vec![Span::raw("fn main")]]);
    }
}
