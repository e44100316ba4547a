//! The model's Markdown as a person sees it.

use airlock_tui::view::markdown::{MarkdownStream, markdown};
use airlock_tui::view::text::plain;
use airlock_tui::view::theme;
use insta::assert_snapshot;
use ratatui::style::Modifier;

use super::support::snapshot_lines;

const ANSWER: &str = r#"# Fixing the parser

The bug is in `parse_line`: it **drops** the last field when the line has *no* trailing newline.
See [the issue](https://github.com/example/repo/issues/42) and <https://example.com>.

## Steps

1. Read `src/parse.rs`
2. Change the loop:
   - keep the remainder
   - add a test
3. Run the tests

> Note: this changes the public API
> of `Record`.

```rust
// the fix
pub fn parse_line(line: &str) -> Vec<String> {
    let n = 42;
    line.split(',').map(|s| s.to_string()).collect()
}
```

| file | lines | change |
|------|------:|--------|
| src/parse.rs | 12 | fix |
| tests/parse.rs | 30 | new test |

---

- [x] done
- [ ] to do
"#;

#[test]
fn an_answer_at_three_widths() {
    for width in [40u16, 80, 120] {
        assert_snapshot!(format!("markdown_{width}"), snapshot_lines(&markdown(ANSWER, width), width));
    }
}

#[test]
fn code_blocks_are_highlighted() {
    let lines = markdown("```rust\npub fn main() { let s = \"x\"; } // done\n```\n", 80);
    let spans: Vec<_> = lines.iter().flat_map(|l| l.spans.iter()).collect();
    let style = |text: &str| spans.iter().find(|s| s.content == text).map(|s| s.style);
    assert_eq!(style("pub"), Some(theme::KEYWORD));
    assert_eq!(style("fn"), Some(theme::KEYWORD));
    assert_eq!(style("\"x\""), Some(theme::STRING));
    assert_eq!(style("// done"), Some(theme::COMMENT));
    // An unknown language is plain.
    let lines = markdown("```cobol\nfn main\n```\n", 80);
    assert!(lines.iter().flat_map(|l| l.spans.iter()).all(|s| s.style == Default::default()), "{lines:?}");
}

#[test]
fn every_highlighted_language() {
    let blocks = [
        ("python", "def f(x):\n    return \"s\" if x else None  # c"),
        ("ts", "export const f = (x: number): string => `n=${x}`; // c"),
        ("go", "func main() { var x = 1 }"),
        ("cpp", "#include <vector>\nint main() { return 0; /* c */ }"),
        ("bash", "for f in *.rs; do echo \"$f\"; done # c"),
        ("toml", "[package]\nname = \"airlock\" # c\nversion = 1"),
        ("json", "{\"a\": [1, true, null], \"b\": \"s\"}"),
        ("yaml", "jobs:\n  - name: test # c\n    run: 'cargo test'"),
        ("diff", "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new"),
    ];
    for (lang, code) in blocks {
        let lines = markdown(&format!("```{lang}\n{code}\n```\n"), 80);
        let styled = lines.iter().flat_map(|l| l.spans.iter()).filter(|s| s.style != Default::default()).count();
        assert!(styled >= 2, "{lang}: {lines:?}");
        assert_eq!(plain(&lines).replace("  ", ""), code.replace("  ", ""), "{lang}: the text is kept");
    }
}

#[test]
fn emphasis_and_headings_carry_styles() {
    let lines = markdown("# Title\n\n**bold** and *it*", 40);
    let spans: Vec<_> = lines.iter().flat_map(|l| l.spans.iter()).collect();
    let find = |t: &str| spans.iter().find(|s| s.content == t).map(|s| s.style);
    assert_eq!(find("Title"), Some(theme::H1));
    assert!(find("bold").is_some_and(|s| s.add_modifier.contains(Modifier::BOLD)));
    assert!(find("it").is_some_and(|s| s.add_modifier.contains(Modifier::ITALIC)));
}

#[test]
fn lines_never_exceed_the_width() {
    for width in [10u16, 23, 40, 80] {
        for line in markdown(ANSWER, width) {
            assert!(line.width() <= width as usize, "{width}: {line:?}");
        }
    }
}

#[test]
fn an_unclosed_fence_streams_as_code() {
    let lines = markdown("Here:\n\n```python\ndef f():\n    return 1", 40);
    assert_snapshot!("markdown_unclosed_fence", snapshot_lines(&lines, 40));
    assert!(lines.iter().flat_map(|l| l.spans.iter()).any(|s| s.content == "def" && s.style == theme::KEYWORD));
}

#[test]
fn a_streamed_answer_ends_as_the_whole() {
    let answer = format!("{ANSWER}\nThen:\n```sh\n# a long script\nls\n\necho done\n```\nAnd *that* is all.\n");
    for delta in [1, 3, 7, 64] {
        let mut stream = MarkdownStream::new();
        let mut scrollback = Vec::new();
        let mut rest = answer.as_str();
        while !rest.is_empty() {
            let mut cut = rest.len().min(delta);
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            stream.push(&rest[..cut]);
            rest = &rest[cut..];
            for line in stream.lines(80) {
                assert!(line.width() <= 80);
            }
            scrollback.extend(stream.take_finished(80));
        }
        scrollback.extend(stream.finish(80));
        assert_eq!(plain(&scrollback), plain(&markdown(&answer, 80)), "deltas of {delta} bytes");
    }
}

#[test]
fn highlighted_code_in_colour() {
    let lines = markdown("```rust\nfn f() -> u8 { 42 } // x\nlet s = \"a\";\n```", 32);
    let buf = super::support::buffer_of_lines(&lines, 32);
    assert_snapshot!("code_styles", format!("{buf:?}"));
}
