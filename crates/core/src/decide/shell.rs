//! What a `sh -c` command line runs: the simple commands of a POSIX shell
//! command, each reduced to the program that actually runs and its words.
//!
//! Only as much of the shell grammar as deciding needs: quotes and escapes,
//! `;` `&&` `||` `|` `&` and newlines, `$(...)` and backticks (the commands
//! inside run too), subshells and braces, redirections and here-documents,
//! assignments, and the reserved words of `if`/`while`/`for`. What it does
//! not understand (`case`, function definitions, `$'...'`, arithmetic or
//! parameter expansions that hide a command) is an error: the caller then
//! asks instead of guessing. No crate parses the shell with few enough
//! dependencies to be worth it here (brush-parser pulls in a cache, a
//! builder macro and insta; conch-parser is unmaintained).
//!
//! A word that the shell would expand (`$X`, a glob, a brace expansion,
//! `~`) is not *literal*: its value is unknown here. Wrappers that run
//! another program (`env`, `timeout 5`, `sudo`, `xargs`, `sh -c`, `eval`,
//! `find -exec`, ...) and paths (`/usr/bin/wget`) are stripped, and git's
//! subcommand is found after its global options.

use thiserror::Error;

/// How deep substitutions and `sh -c` may nest before the command is refused.
const MAX_DEPTH: usize = 12;

/// One word after quote removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// The text, with expansions kept as written.
    pub text: String,
    /// Whether the shell would use the text as it is (no expansion, glob or brace).
    pub literal: bool,
    /// `NAME=value` with an unquoted name: an assignment where a command may start.
    assignment: bool,
    /// Quoted in part: then never a reserved word (`"for"` is a command named `for`).
    quoted: bool,
}

/// A command line the parser does not understand, or refuses to guess about.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum ShellError {
    /// The grammar is incomplete or wrong.
    #[error("cannot parse the command: {0}")]
    Syntax(String),
    /// Valid, but outside what is decided here.
    #[error("not decided by rules: {0}")]
    Unsupported(String),
}

/// Something the command line runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// A program and its arguments; the first word is the program's name,
    /// without its folder.
    Run(Vec<Word>),
    /// A wrapper that runs another program (`sudo`, `env`, `sh -c`): only a
    /// deny rule that names it applies.
    Wrapper(Vec<Word>),
    /// A program that cannot be known before it runs (`$CMD`, `sh -c "$X"`).
    Unknown(String),
}

/// The parts of `command`, in order. An error means the command as a whole
/// cannot be decided by rules.
pub(crate) fn parts(command: &str) -> Result<Vec<Part>, ShellError> {
    let mut out = Vec::new();
    for words in simple_commands(command, 0)? {
        normalize(words, 0, &mut out)?;
    }
    Ok(out)
}

/// Each simple command's words as the shell would pass them (quotes
/// removed, expansions as written), assignments and redirections removed.
pub(crate) fn argvs(command: &str) -> Result<Vec<Vec<String>>, ShellError> {
    Ok(simple_commands(command, 0)?.into_iter().map(|words| words.into_iter().map(|w| w.text).collect()).collect())
}

/// The simple commands of a command line, assignments and redirections removed.
fn simple_commands(command: &str, depth: usize) -> Result<Vec<Vec<Word>>, ShellError> {
    if depth > MAX_DEPTH {
        return Err(ShellError::Unsupported("commands nested too deeply".into()));
    }
    let mut p = Parser { chars: command.chars().collect(), pos: 0, depth, out: Vec::new() };
    p.list(false)?;
    Ok(p.out)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    out: Vec<Vec<Word>>,
}

/// A here-document waiting for its body (after the next newline).
struct HereDoc {
    delimiter: String,
    quoted: bool,
    strip_tabs: bool,
}

fn syntax<T>(message: impl Into<String>) -> Result<T, ShellError> {
    Err(ShellError::Syntax(message.into()))
}

fn unsupported<T>(message: impl Into<String>) -> Result<T, ShellError> {
    Err(ShellError::Unsupported(message.into()))
}

/// Characters that end an unquoted word.
fn is_meta(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>')
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    /// Commands until the end, or (in `$(...)` and subshells) until the `)` that closes them.
    fn list(&mut self, in_parens: bool) -> Result<(), ShellError> {
        let mut current: Vec<Word> = Vec::new();
        let mut heredocs: Vec<HereDoc> = Vec::new();
        // After `for NAME`: its words are not a command, up to the next separator.
        let mut skipping = false;
        loop {
            let Some(c) = self.peek() else {
                if in_parens {
                    return syntax("a `(` or `$(` is not closed");
                }
                if !heredocs.is_empty() {
                    return syntax("a here-document has no body");
                }
                self.finish(&mut current, &mut skipping);
                return Ok(());
            };
            match c {
                ' ' | '\t' => self.pos += 1,
                '\\' if self.peek_at(1) == Some('\n') => self.pos += 2,
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                '\n' => {
                    self.pos += 1;
                    self.finish(&mut current, &mut skipping);
                    for doc in heredocs.drain(..) {
                        self.heredoc_body(&doc)?;
                    }
                }
                ';' => {
                    if self.peek_at(1) == Some(';') {
                        return unsupported("`;;` (case)");
                    }
                    self.pos += 1;
                    self.finish(&mut current, &mut skipping);
                }
                '&' if self.peek_at(1) == Some('>') => {
                    // bash's `&>FILE` (dash: `&` then `>FILE`): either way a redirection.
                    self.pos += 2;
                    if self.peek() == Some('>') {
                        self.pos += 1;
                    }
                    self.redirect_target()?;
                }
                '&' | '|' => {
                    self.pos += 1;
                    if matches!(self.peek(), Some('&' | '|')) {
                        self.pos += 1;
                    }
                    self.finish(&mut current, &mut skipping);
                }
                '(' => {
                    if !current.is_empty() || skipping {
                        return unsupported("`(` after a word (a function definition?)");
                    }
                    self.pos += 1;
                    self.nested(|p| p.list(true))?;
                }
                ')' => {
                    if !in_parens {
                        return syntax("a `)` without its `(`");
                    }
                    self.pos += 1;
                    if !heredocs.is_empty() {
                        return unsupported("a here-document inside `$(...)`");
                    }
                    self.finish(&mut current, &mut skipping);
                    return Ok(());
                }
                '<' | '>' => {
                    if let Some(doc) = self.redirection()? {
                        heredocs.push(doc);
                    }
                }
                _ => {
                    let (word, io_number) = self.word()?;
                    if io_number {
                        // `2>file`: the digits are the descriptor, not a word.
                        if let Some(doc) = self.redirection()? {
                            heredocs.push(doc);
                        }
                        continue;
                    }
                    if skipping {
                        continue;
                    }
                    if current.iter().all(|w| w.assignment) && word.literal && !word.quoted && !word.assignment {
                        match word.text.as_str() {
                            // Reserved words where a command starts: the command follows.
                            "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "}" | "fi"
                            | "done"
                                if current.is_empty() =>
                            {
                                continue;
                            }
                            "for" | "select" if current.is_empty() => {
                                skipping = true;
                                continue;
                            }
                            "case" | "esac" | "function" | "coproc" if current.is_empty() => {
                                return unsupported(format!("`{}`", word.text));
                            }
                            _ => {}
                        }
                    }
                    current.push(word);
                }
            }
        }
    }

    /// Runs `f` one level deeper (a subshell or substitution).
    fn nested(&mut self, f: impl FnOnce(&mut Parser) -> Result<(), ShellError>) -> Result<(), ShellError> {
        if self.depth >= MAX_DEPTH {
            return unsupported("commands nested too deeply");
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn finish(&mut self, current: &mut Vec<Word>, skipping: &mut bool) {
        *skipping = false;
        let words = std::mem::take(current);
        if !words.is_empty() {
            self.out.push(words);
        }
    }

    /// A redirection operator at `pos` and its target; a here-document to read later.
    fn redirection(&mut self) -> Result<Option<HereDoc>, ShellError> {
        let rest: String = self.chars[self.pos..].iter().take(3).collect();
        let (len, heredoc) = if rest.starts_with("<<<") {
            (3, None)
        } else if rest.starts_with("<<-") {
            (3, Some(true))
        } else if rest.starts_with("<<") {
            (2, Some(false))
        } else if ["<>", "<&", ">>", ">|", ">&"].iter().any(|op| rest.starts_with(op)) {
            (2, None)
        } else {
            (1, None)
        };
        self.pos += len;
        let target = self.redirect_target()?;
        Ok(heredoc.map(|strip_tabs| HereDoc { delimiter: target.text.clone(), quoted: target.quoted, strip_tabs }))
    }

    /// The word after a redirection operator.
    fn redirect_target(&mut self) -> Result<Target, ShellError> {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
        match self.peek() {
            Some(c) if !is_meta(c) => {
                let start = self.pos;
                let (word, _) = self.word()?;
                let quoted = self.chars[start..self.pos].iter().any(|c| matches!(c, '\'' | '"' | '\\'));
                Ok(Target { text: word.text, quoted })
            }
            _ => syntax("a redirection without a target (process substitution is not supported)"),
        }
    }

    /// Skips a here-document's lines; an unquoted one whose body would run
    /// commands is refused.
    fn heredoc_body(&mut self, doc: &HereDoc) -> Result<(), ShellError> {
        loop {
            let start = self.pos;
            while self.peek().is_some_and(|c| c != '\n') {
                self.pos += 1;
            }
            let line: String = self.chars[start..self.pos].iter().collect();
            let at_end = self.peek().is_none();
            if self.peek() == Some('\n') {
                self.pos += 1;
            }
            let line = if doc.strip_tabs { line.trim_start_matches('\t') } else { line.as_str() };
            if line == doc.delimiter {
                return Ok(());
            }
            if !doc.quoted && (line.contains("$(") || line.contains('`')) {
                return unsupported("a here-document that runs commands");
            }
            if at_end {
                return Ok(());
            }
        }
    }

    /// One word; `true` when it is a descriptor number right before `<` or `>`.
    fn word(&mut self) -> Result<(Word, bool), ShellError> {
        let mut text = String::new();
        let mut literal = true;
        let mut quoted = false;
        let mut assignment = false;
        let mut brace = false;
        let start = self.pos;
        while let Some(c) = self.peek() {
            if is_meta(c) {
                break;
            }
            match c {
                '\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some('\n') => self.pos += 1,
                        Some(next) => {
                            text.push(next);
                            quoted = true;
                            self.pos += 1;
                        }
                        None => return syntax("a `\\` at the end"),
                    }
                }
                '\'' => {
                    self.pos += 1;
                    quoted = true;
                    loop {
                        match self.peek() {
                            Some('\'') => break,
                            Some(ch) => text.push(ch),
                            None => return syntax("a `'` is not closed"),
                        }
                        self.pos += 1;
                    }
                    self.pos += 1;
                }
                '"' => {
                    self.pos += 1;
                    quoted = true;
                    loop {
                        match self.peek() {
                            Some('"') => break,
                            Some('\\') => {
                                match self.peek_at(1) {
                                    Some('\n') => {}
                                    Some(e @ ('$' | '`' | '"' | '\\')) => text.push(e),
                                    Some(other) => {
                                        text.push('\\');
                                        text.push(other);
                                    }
                                    None => return syntax("a `\"` is not closed"),
                                }
                                self.pos += 2;
                            }
                            Some('$') => {
                                if self.dollar(&mut text)? {
                                    literal = false;
                                }
                            }
                            Some('`') => {
                                self.backquote()?;
                                literal = false;
                            }
                            Some(ch) => {
                                text.push(ch);
                                self.pos += 1;
                            }
                            None => return syntax("a `\"` is not closed"),
                        }
                    }
                    self.pos += 1;
                }
                '$' => {
                    if self.dollar(&mut text)? {
                        literal = false;
                    }
                }
                '`' => {
                    self.backquote()?;
                    literal = false;
                }
                '*' | '?' | '[' => {
                    // A glob: the value is not the text.
                    text.push(c);
                    self.pos += 1;
                    literal = false;
                }
                '{' | '}' => {
                    // bash expands `{a,b}` and `{1..3}`; `{}` and a lone `{` stay.
                    text.push(c);
                    self.pos += 1;
                    brace = true;
                }
                '~' if self.pos == start => {
                    text.push(c);
                    self.pos += 1;
                    literal = false;
                }
                '=' => {
                    if !assignment && !quoted && literal && is_name(&text) {
                        assignment = true;
                    }
                    text.push(c);
                    self.pos += 1;
                }
                _ => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        if brace && (text.contains(',') || text.contains("..")) {
            literal = false;
        }
        let io_number = !quoted
            && literal
            && !text.is_empty()
            && text.chars().all(|c| c.is_ascii_digit())
            && matches!(self.peek(), Some('<' | '>'));
        Ok((Word { text, literal, assignment, quoted }, io_number))
    }

    /// An expansion at `$`: `true` when it expands to something unknown here
    /// (the commands of a substitution are recorded).
    fn dollar(&mut self, text: &mut String) -> Result<bool, ShellError> {
        self.pos += 1;
        match self.peek() {
            Some('(') if self.peek_at(1) == Some('(') => {
                // Arithmetic: safe unless it hides a command.
                let start = self.pos;
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        Some('(') => depth += 1,
                        Some(')') => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                self.pos += 1;
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return syntax("a `$((` is not closed"),
                    }
                    self.pos += 1;
                }
                let inner: String = self.chars[start..self.pos].iter().collect();
                if inner.contains('$') || inner.contains('`') {
                    return unsupported("an arithmetic expansion with substitutions");
                }
                text.push_str("$((…))");
                Ok(true)
            }
            Some('(') => {
                self.pos += 1;
                self.nested(|p| p.list(true))?;
                text.push_str("$(…)");
                Ok(true)
            }
            Some('{') => {
                let start = self.pos;
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        Some('{') => depth += 1,
                        Some('}') => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos += 1;
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return syntax("a `${` is not closed"),
                    }
                    self.pos += 1;
                }
                let inner: String = self.chars[start..self.pos].iter().collect();
                if inner.contains(['$', '`', '\'', '"', '\\']) {
                    return unsupported("a parameter expansion with quotes or substitutions");
                }
                text.push_str(&inner);
                Ok(true)
            }
            Some('\'' | '"') => unsupported("`$'...'` and `$\"...\"` quoting"),
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                text.push('$');
                while self.peek().is_some_and(|c| c == '_' || c.is_ascii_alphanumeric()) {
                    text.push(self.chars[self.pos]);
                    self.pos += 1;
                }
                Ok(true)
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                text.push('$');
                text.push(c);
                self.pos += 1;
                Ok(true)
            }
            _ => {
                text.push('$');
                Ok(false)
            }
        }
    }

    /// A `` `...` `` substitution: its text, unescaped, is parsed as commands.
    fn backquote(&mut self) -> Result<(), ShellError> {
        self.pos += 1;
        let mut inner = String::new();
        loop {
            match self.peek() {
                Some('`') => break,
                Some('\\') => {
                    match self.peek_at(1) {
                        Some(e @ ('$' | '`' | '\\')) => inner.push(e),
                        Some(other) => {
                            inner.push('\\');
                            inner.push(other);
                        }
                        None => return syntax("a `` ` `` is not closed"),
                    }
                    self.pos += 2;
                    continue;
                }
                Some(c) => inner.push(c),
                None => return syntax("a `` ` `` is not closed"),
            }
            self.pos += 1;
        }
        self.pos += 1;
        let commands = simple_commands(&inner, self.depth + 1)?;
        self.out.extend(commands);
        Ok(())
    }
}

struct Target {
    text: String,
    quoted: bool,
}

/// The name a program runs as: `/usr/bin/wget` is `wget`.
pub(crate) fn program_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Reduces one simple command to what runs, through wrappers and shells.
fn normalize(mut words: Vec<Word>, depth: usize, out: &mut Vec<Part>) -> Result<(), ShellError> {
    if depth > MAX_DEPTH {
        return unsupported("wrappers nested too deeply");
    }
    // Leading assignments (`A=1 cmd`) set the environment; the command follows.
    let skip = words.iter().take_while(|w| w.assignment).count();
    words.drain(..skip);
    let Some(first) = words.first() else {
        return Ok(());
    };
    if !first.literal {
        out.push(Part::Unknown(format!("the program `{}` is only known when the shell expands it", first.text)));
        return Ok(());
    }
    let name = program_name(&first.text).to_string();
    words[0].text = name.clone();
    let wrapper = |out: &mut Vec<Part>, n: usize| out.push(Part::Wrapper(words[..n].to_vec()));
    // Where the wrapped command starts, for the wrappers with options.
    let inner: Option<Result<usize, String>> = match name.as_str() {
        "env" => Some(env_command(&words)),
        "command" | "builtin" => Some(options(&words, "pvV", "", &[], &[])),
        "exec" => Some(options(&words, "cl", "a", &[], &[])),
        "nohup" => Some(options(&words, "", "", &[], &[])),
        "nice" => Some(nice_command(&words)),
        "setsid" => Some(options(&words, "cfw", "", &["--ctty", "--fork", "--wait"], &[])),
        "stdbuf" => Some(options(&words, "", "ioe", &[], &["--input", "--output", "--error"])),
        "ionice" => Some(options(&words, "t", "cnp", &["--ignore"], &["--class", "--classdata"])),
        "time" => Some(options(
            &words,
            "pvaq",
            "of",
            &["--portability", "--verbose", "--append", "--quiet"],
            &["--output", "--format"],
        )),
        "timeout" => Some(
            options(
                &words,
                "v",
                "sk",
                &["--preserve-status", "--foreground", "--verbose"],
                &["--signal", "--kill-after"],
            )
            .map(|i| i + 1),
        ),
        "sudo" | "doas" => Some(
            options(
                &words,
                "AbEHiKklnPSsVv",
                "CDghpRrTtUu",
                &["--preserve-env", "--login", "--shell", "--non-interactive", "--background", "--askpass"],
                &["--user", "--group", "--host", "--prompt", "--chdir", "--chroot", "--close-from", "--other-user"],
            )
            .map(|i| i + words[i.min(words.len())..].iter().take_while(|w| w.text.contains('=') && w.literal).count()),
        ),
        "xargs" => Some(options(
            &words,
            "0prtxo",
            "adEeIiLlnPs",
            &["--null", "--no-run-if-empty", "--verbose", "--exit", "--interactive", "--open-tty"],
            &[
                "--arg-file",
                "--delimiter",
                "--eof",
                "--replace",
                "--max-lines",
                "--max-args",
                "--max-procs",
                "--max-chars",
                "--process-slot-var",
            ],
        )),
        "busybox" => Some(Ok(1)),
        _ => None,
    };
    if let Some(inner) = inner {
        match inner {
            Ok(i) if i >= words.len() && name != "xargs" => {
                // Nothing wrapped: the wrapper is the program (`env` prints the environment).
                out.push(Part::Run(words));
            }
            Ok(i) if i >= words.len() => {
                wrapper(out, words.len());
                out.push(Part::Run(vec![Word {
                    text: "echo".into(),
                    literal: true,
                    assignment: false,
                    quoted: false,
                }]));
            }
            Ok(i) => {
                wrapper(out, i);
                let rest = words[i..].to_vec();
                normalize(rest, depth + 1, out)?;
            }
            Err(why) => out.push(Part::Unknown(format!("`{name}` {why}"))),
        }
        return Ok(());
    }
    match name.as_str() {
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "posh" | "yash" => shell_command(words, depth, out),
        "eval" => {
            wrapper(out, 1);
            if words[1..].iter().any(|w| !w.literal) {
                out.push(Part::Unknown("`eval` of words only known when the shell expands them".into()));
                return Ok(());
            }
            let script = words[1..].iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
            for cmd in simple_commands(&script, depth + 1)? {
                normalize(cmd, depth + 1, out)?;
            }
            Ok(())
        }
        "find" => {
            // `-exec CMD ... ;` runs CMD for each file.
            let mut i = 1;
            let mut execs = Vec::new();
            while i < words.len() {
                if matches!(words[i].text.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
                    let end = words[i + 1..]
                        .iter()
                        .position(|w| w.text == ";" || w.text == "+")
                        .map_or(words.len(), |p| i + 1 + p);
                    execs.push(words[i + 1..end].to_vec());
                    i = end;
                }
                i += 1;
            }
            out.push(Part::Run(words));
            for cmd in execs {
                normalize(cmd, depth + 1, out)?;
            }
            Ok(())
        }
        "git" => {
            out.push(git_command(words));
            Ok(())
        }
        // git's own programs (`/usr/lib/git-core/git-push`) are its subcommands.
        git if git.len() > 4 && git.starts_with("git-") => {
            let mut normal = vec![Word { text: "git".into(), literal: true, assignment: false, quoted: false }];
            normal.push(Word { text: git[4..].to_string(), literal: true, assignment: false, quoted: false });
            normal.extend(words.into_iter().skip(1));
            out.push(Part::Run(normal));
            Ok(())
        }
        // They change what a later name runs (`alias c=curl`, bash's `hash -p /usr/bin/curl c`).
        "alias" | "hash" => {
            out.push(Part::Unknown(format!("`{name}` may change what a later command name runs")));
            Ok(())
        }
        _ => {
            out.push(Part::Run(words));
            Ok(())
        }
    }
}

/// Where the command starts after options: `flags` take no argument, `with_arg`
/// take one (attached or next); long options likewise (`--opt=value` or
/// `--opt value`). An option it does not know is an error: it may take an
/// argument, and then the command is elsewhere.
fn options(
    words: &[Word],
    flags: &str,
    with_arg: &str,
    long_flags: &[&str],
    long_with_arg: &[&str],
) -> Result<usize, String> {
    let mut i = 1;
    while i < words.len() {
        let w = &words[i];
        if !w.literal {
            return Err(format!("has the argument `{}`, only known when the shell expands it", w.text));
        }
        let t = w.text.as_str();
        if t == "--" {
            return Ok(i + 1);
        }
        if !t.starts_with('-') || t == "-" {
            return Ok(i);
        }
        if let Some(long) = t.strip_prefix("--") {
            let name = format!("--{}", long.split('=').next().unwrap_or(long));
            if long_flags.contains(&name.as_str()) {
                i += 1;
            } else if long_with_arg.contains(&name.as_str()) {
                i += if long.contains('=') { 1 } else { 2 };
            } else {
                return Err(format!("has the option `{t}`, not known here"));
            }
            continue;
        }
        let mut skip = 1;
        for (k, c) in t.char_indices().skip(1) {
            if flags.contains(c) {
                continue;
            }
            if with_arg.contains(c) {
                if k + c.len_utf8() == t.len() {
                    skip = 2;
                }
                break;
            }
            return Err(format!("has the option `{t}`, not known here"));
        }
        i += skip;
    }
    Ok(i)
}

/// `env [-i] [-u NAME] [-C DIR] [NAME=VALUE]... COMMAND`.
fn env_command(words: &[Word]) -> Result<usize, String> {
    let mut i = options(words, "i0v", "uC", &["--ignore-environment", "--null", "--debug"], &["--unset", "--chdir"])?;
    if words.get(i).is_some_and(|w| w.text == "-") {
        i += 1;
    }
    while let Some(w) = words.get(i) {
        if !w.literal && !w.assignment {
            return Err(format!("has the argument `{}`, only known when the shell expands it", w.text));
        }
        if !w.text.contains('=') {
            break;
        }
        i += 1;
    }
    Ok(i)
}

/// `nice [-n N | -N | --adjustment=N] COMMAND`.
fn nice_command(words: &[Word]) -> Result<usize, String> {
    match words.get(1).map(|w| w.text.as_str()) {
        Some(t) if t.len() > 1 && t.starts_with('-') && t[1..].chars().all(|c| c.is_ascii_digit()) => Ok(2),
        _ => options(words, "", "n", &[], &["--adjustment"]),
    }
}

/// `sh -c SCRIPT` (also `-ec`, `-o pipefail -c`): the script's commands run.
fn shell_command(words: Vec<Word>, depth: usize, out: &mut Vec<Part>) -> Result<(), ShellError> {
    let mut i = 1;
    let mut script = false;
    while i < words.len() {
        let w = &words[i];
        if !w.literal {
            out.push(Part::Unknown(format!(
                "`{}` has the argument `{}`, only known when the shell expands it",
                words[0].text, w.text
            )));
            return Ok(());
        }
        let t = w.text.as_str();
        if t == "--" || t == "-" {
            i += 1;
            break;
        }
        if let Some(long) = t.strip_prefix("--") {
            i += if matches!(long, "rcfile" | "init-file") { 2 } else { 1 };
            continue;
        }
        if !(t.starts_with('-') || t.starts_with('+')) {
            break;
        }
        if t[1..].contains('c') {
            script = true;
        }
        // `-o NAME` and bash's `-O NAME` take the next word.
        i += if t[1..].ends_with(['o', 'O']) { 2 } else { 1 };
    }
    out.push(Part::Wrapper(words[..1].to_vec()));
    if !script {
        // A script file or standard input: the shell itself is what rules see.
        out.push(Part::Run(words));
        return Ok(());
    }
    let Some(body) = words.get(i) else {
        out.push(Part::Unknown(format!("`{} -c` without a command", words[0].text)));
        return Ok(());
    };
    if !body.literal {
        out.push(Part::Unknown(format!("`{} -c` of a command only known when the shell expands it", words[0].text)));
        return Ok(());
    }
    for cmd in simple_commands(&body.text, depth + 1)? {
        normalize(cmd, depth + 1, out)?;
    }
    Ok(())
}

/// `git [global options] SUBCOMMAND ...` as `git SUBCOMMAND ...`.
fn git_command(words: Vec<Word>) -> Part {
    // Options that take a value, attached (`--git-dir=x`) or as the next word.
    const WITH_VALUE: &[&str] =
        &["-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env", "--attr-source"];
    let mut i = 1;
    while i < words.len() {
        let w = &words[i];
        if !w.literal || !w.text.starts_with('-') {
            break;
        }
        let t = w.text.as_str();
        let (name, attached) = match t.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (t, None),
        };
        if WITH_VALUE.contains(&name) {
            let value = match attached {
                Some(v) => Some((v.to_string(), true)),
                None => words.get(i + 1).map(|v| (v.text.clone(), v.literal)),
            };
            // `-c alias.X=...` makes X mean anything, a shell command included.
            if matches!(name, "-c" | "--config-env") {
                match value {
                    Some((v, true)) if !v.to_ascii_lowercase().starts_with("alias.") => {}
                    Some((v, _)) => {
                        return Part::Unknown(format!("`git {name} {v}` may define what the subcommand means"));
                    }
                    None => {}
                }
            }
            i += if attached.is_some() { 1 } else { 2 };
        } else if name.starts_with("--") || matches!(t, "-p" | "-P" | "-h" | "-v") {
            // `--no-pager`, `--bare`, `--exec-path[=DIR]`, ...: no separate value.
            i += 1;
        } else {
            return Part::Unknown(format!("`git {t}` is an option not known here"));
        }
    }
    let mut normal = vec![words[0].clone()];
    normal.extend(words.into_iter().skip(i));
    Part::Run(normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The programs and words each part runs, as text (`?` marks a word that is not literal).
    fn shown(command: &str) -> Vec<String> {
        parts(command)
            .unwrap()
            .into_iter()
            .map(|p| match p {
                Part::Run(w) => w
                    .iter()
                    .map(|w| if w.literal { w.text.clone() } else { format!("?{}", w.text) })
                    .collect::<Vec<_>>()
                    .join(" "),
                Part::Wrapper(w) => format!("wrapper:{}", w[0].text),
                Part::Unknown(why) => format!("unknown:{why}"),
            })
            .collect()
    }

    fn programs(command: &str) -> Vec<String> {
        parts(command)
            .unwrap()
            .into_iter()
            .filter_map(|p| match p {
                Part::Run(w) => Some(w[0].text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn lists_pipelines_and_substitutions_are_split_into_commands() {
        assert_eq!(shown("cargo test -p x"), ["cargo test -p x"]);
        assert_eq!(programs("a; b && c || d | e & f\ng"), ["a", "b", "c", "d", "e", "f", "g"]);
        assert_eq!(programs("echo $(curl x) `wget y`"), ["curl", "wget", "echo"]);
        assert_eq!(programs("echo \"$(curl x)\""), ["curl", "echo"]);
        assert_eq!(programs("(cd a && make) | tee log"), ["cd", "make", "tee"]);
        assert_eq!(programs("{ curl x; }"), ["curl"]);
        assert_eq!(programs("if true; then curl x; fi"), ["true", "curl"]);
        assert_eq!(programs("for f in a b; do wget $f; done"), ["wget"]);
        assert_eq!(programs("while read l; do echo $l; done < f"), ["read", "echo"]);
        assert_eq!(programs("X=$(curl x) make"), ["curl", "make"]);
        assert_eq!(programs("X=1"), Vec::<String>::new());
        assert_eq!(programs("echo a # ; curl x"), ["echo"]);
        assert_eq!(programs("ls 2>/dev/null >out <in; curl x 2>&1"), ["ls", "curl"]);
        assert_eq!(shown("ls 2>/dev/null"), ["ls"]);
        assert_eq!(programs("cat <<EOF\ncurl x\nEOF\nwget y"), ["cat", "wget"]);
        assert_eq!(programs("cat <<'EOF'\n$(curl x)\nEOF"), ["cat"]);
        assert_eq!(programs("a \\\n && b"), ["a", "b"]);
        assert_eq!(programs("! curl x"), ["curl"]);
        assert_eq!(programs("echo $((1 + 2))"), ["echo"]);
    }

    #[test]
    fn quotes_are_removed_and_expansions_are_not_literal() {
        assert_eq!(shown("c'ur'l \"x y\" \\w"), ["curl x y w"]);
        assert_eq!(shown("echo $HOME ${X} *.rs {a,b} ~"), ["echo ?$HOME ?{X} ?*.rs ?{a,b} ?~"]);
        assert_eq!(shown("'/usr/bin/wget' x"), ["wget x"]);
        assert!(shown("$CMD x")[0].starts_with("unknown:"));
        assert!(shown("cur? x")[0].starts_with("unknown:"));
        assert!(shown("{curl,x}")[0].starts_with("unknown:"));
        // Quoted, a reserved word is a command name: what follows is its argument, not hidden.
        assert_eq!(programs("\\for curl x"), ["for"]);
        assert_eq!(programs("\"if\" curl"), ["if"]);
        assert!(shown("alias c=curl\nc x")[0].starts_with("unknown:"));
    }

    #[test]
    fn wrappers_and_paths_are_stripped() {
        for (command, runs) in [
            ("env curl x", "curl x"),
            ("env -i A=1 B=2 curl x", "curl x"),
            ("env -u HOME -- curl x", "curl x"),
            ("command -p curl x", "curl x"),
            ("exec curl x", "curl x"),
            ("nice -n 5 curl x", "curl x"),
            ("nice -5 curl x", "curl x"),
            ("nohup curl x", "curl x"),
            ("timeout 5 curl x", "curl x"),
            ("timeout -s KILL 5s curl x", "curl x"),
            ("timeout --signal=KILL 5 curl x", "curl x"),
            ("sudo -u root curl x", "curl x"),
            ("sudo HOME=/ curl x", "curl x"),
            ("xargs -n1 curl", "curl"),
            ("xargs -I{} curl {}", "curl {}"),
            ("busybox wget x", "wget x"),
            ("/usr/bin/wget x", "wget x"),
            ("./bin/../wget x", "wget x"),
            ("env nice timeout 1 /bin/curl x", "curl x"),
            ("stdbuf -oL curl x", "curl x"),
            ("time -p curl x", "curl x"),
        ] {
            let run: Vec<String> = shown(command).into_iter().filter(|s| !s.starts_with("wrapper:")).collect();
            assert_eq!(run, [runs], "{command}");
        }
        assert_eq!(shown("env"), ["env"]);
        assert_eq!(shown("xargs"), ["wrapper:xargs", "echo"]);
        assert!(shown("env --frobnicate curl")[0].starts_with("unknown:"), "an unknown option fails closed");
        assert!(shown("env $X curl")[0].starts_with("unknown:"));
    }

    #[test]
    fn shells_and_eval_run_their_scripts() {
        assert_eq!(programs("sh -c 'curl x'"), ["curl"]);
        assert_eq!(programs("bash -ec \"echo a; wget y\""), ["echo", "wget"]);
        assert_eq!(programs("bash -o pipefail -c 'sh -c \"curl x\"'"), ["curl"]);
        assert_eq!(programs("eval curl x"), ["curl"]);
        assert_eq!(programs("eval 'a;' b"), ["a", "b"]);
        assert_eq!(programs("bash script.sh"), ["bash"]);
        assert_eq!(programs("find . -name x -exec curl {} \\;"), ["find", "curl"]);
        assert!(shown("sh -c \"$X\"").iter().any(|s| s.starts_with("unknown:")));
    }

    #[test]
    fn git_subcommands_are_found_after_global_options() {
        for command in [
            "git push",
            "git -C . push",
            "git -c x=y push",
            "git --git-dir=.git push",
            "git --git-dir .git --work-tree . push",
            "git --no-pager -P push origin",
            "/usr/bin/git -C a -C b push",
        ] {
            assert_eq!(&shown(command)[0][..8], "git push", "{command}");
        }
        assert!(shown("git -c alias.p=push p")[0].starts_with("unknown:"));
        assert!(shown("git -c Alias.p='!curl x' p")[0].starts_with("unknown:"));
        assert!(shown("git --config-env=alias.p=X p")[0].starts_with("unknown:"));
        assert!(shown("git -x push")[0].starts_with("unknown:"));
        assert_eq!(shown("git $SUB"), ["git ?$SUB"]);
        assert_eq!(shown("/usr/lib/git-core/git-push origin"), ["git push origin"]);
    }

    #[test]
    fn any_input_is_parsed_or_refused_without_a_panic() {
        let alphabet: Vec<char> = "ab c'\"\\$(){}`;&|<>\n#=*-~!".chars().collect();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut text = String::new();
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            for _ in 0..(seed >> 59) as usize + 1 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            let _ = parts(&text);
            let _ = parts(&format!("sh -c '{text}'"));
        }
    }

    #[test]
    fn what_is_not_understood_is_an_error() {
        for command in [
            "echo 'open",
            "echo \"open",
            "echo $(open",
            "a )",
            "case x in a) curl;; esac",
            "f() { curl x; }",
            "function f { curl x; }",
            "cat <(curl x)",
            "echo $'\\x63url'",
            "echo ${X:-$(curl x)}",
            "echo $(( $(curl x) ))",
            "cat <<EOF\n$(curl x)\nEOF",
            "a \\",
        ] {
            assert!(parts(command).is_err(), "{command:?}");
        }
        let deep = "$(".repeat(40) + &")".repeat(40);
        assert!(parts(&format!("echo {deep}")).is_err());
        assert!(parts(&format!("{}curl x", "eval ".repeat(40))).is_err());
    }
}
