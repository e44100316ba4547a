//! The model's text as Markdown: headings, emphasis, inline code, lists,
//! block quotes, links, simple tables and highlighted code blocks.
//!
//! Model text is drawn without borders and without background colours, in
//! the terminal's default colours except for emphasis and code, and it is
//! sanitised before it is parsed: it cannot draw anything in the approval
//! panel's style (see [`super::theme`]).

use pulldown_cmark::{Alignment, CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::highlight::{Language, highlight};
use super::text::{self, clean, spans_width, wrap, wrap_columns};
use super::theme;

/// `markdown` (text from the model) laid out for `width` columns.
///
/// Also the streaming form: an unclosed code fence renders as a code block
/// to the end, so the app can re-render the partial text on each delta.
pub fn markdown(markdown: &str, width: u16) -> Vec<Line<'static>> {
    let source = clean(markdown);
    let mut r = Renderer::new(width as usize);
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    for event in Parser::new_ext(&source, options) {
        r.event(event);
    }
    r.flush();
    text::clip(r.out, width as usize)
}

/// A block that holds other blocks.
enum Container {
    Quote,
    /// A list: the number of its next item (None: bullets), and its depth.
    List {
        next: Option<u64>,
        depth: usize,
    },
    /// An item: its marker, and whether the marker was drawn yet.
    Item {
        marker: String,
        drawn: bool,
    },
}

/// A table being collected.
#[derive(Default)]
struct Table {
    alignments: Vec<Alignment>,
    rows: Vec<Vec<Vec<Span<'static>>>>,
    header_rows: usize,
}

struct Renderer {
    width: usize,
    out: Vec<Line<'static>>,
    inline: Vec<Span<'static>>,
    styles: Vec<Style>,
    containers: Vec<Container>,
    /// A code block being collected: its language and text.
    code: Option<(Option<Language>, String)>,
    table: Option<Table>,
    /// Links being collected: destination and where their text starts in `inline`.
    links: Vec<(String, usize)>,
    /// Whether a blank line goes before the next block.
    blank_before_next: bool,
    /// Whether a block ended already (then the next one is separated from
    /// it, even when it drew nothing: the closing fence of a code block
    /// whose lines went to the scrollback while streaming).
    after_block: bool,
}

impl Renderer {
    fn new(width: usize) -> Renderer {
        Renderer {
            width: width.max(1),
            out: Vec::new(),
            inline: Vec::new(),
            styles: Vec::new(),
            containers: Vec::new(),
            code: None,
            table: None,
            links: Vec::new(),
            blank_before_next: false,
            after_block: false,
        }
    }

    fn style(&self) -> Style {
        self.styles.iter().fold(Style::new(), |a, s| a.patch(*s))
    }

    /// The prefixes of the next line and of the lines after it, from the
    /// containers: quote bars, list markers and their indentation. Marks the
    /// innermost item's marker as drawn.
    fn prefixes(&mut self) -> (Vec<Span<'static>>, Vec<Span<'static>>) {
        let mut first = Vec::new();
        let mut rest = Vec::new();
        for c in &mut self.containers {
            match c {
                Container::Quote => {
                    first.push(Span::styled("▎ ", theme::QUOTE));
                    rest.push(Span::styled("▎ ", theme::QUOTE));
                }
                Container::List { .. } => {}
                Container::Item { marker, drawn } => {
                    let pad = " ".repeat(text::width(marker));
                    if *drawn {
                        first.push(Span::raw(pad.clone()));
                    } else {
                        first.push(Span::styled(marker.clone(), theme::BULLET));
                        *drawn = true;
                    }
                    rest.push(Span::raw(pad));
                }
            }
        }
        (first, rest)
    }

    /// A blank line between blocks, keeping quote bars.
    fn block_start(&mut self) {
        if self.blank_before_next && (self.after_block || !self.out.is_empty()) {
            let bars: Vec<Span<'static>> = self
                .containers
                .iter()
                .filter(|c| matches!(c, Container::Quote))
                .map(|_| Span::styled("▎", theme::QUOTE))
                .collect();
            self.out.push(Line::from(bars));
        }
        self.blank_before_next = false;
    }

    fn flush(&mut self) {
        if self.inline.is_empty() {
            return;
        }
        let spans = std::mem::take(&mut self.inline);
        let (first, rest) = self.prefixes();
        self.out.extend(wrap(&spans, self.width, &first, &rest));
    }

    fn push_text(&mut self, text: &str) {
        let style = self.style();
        self.inline.push(Span::styled(text.to_string(), style));
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => match &mut self.code {
                Some((_, code)) => code.push_str(&t),
                None => self.push_text(&t),
            },
            Event::Code(t) => {
                let style = self.style().patch(theme::INLINE_CODE);
                self.inline.push(Span::styled(t.to_string(), style));
            }
            Event::InlineMath(t) | Event::DisplayMath(t) | Event::FootnoteReference(t) => self.push_text(&t),
            Event::Html(t) | Event::InlineHtml(t) => self.push_text(&t),
            Event::SoftBreak => self.push_text(" "),
            Event::HardBreak => self.push_text("\n"),
            Event::Rule => {
                self.flush();
                self.block_start();
                let (first, _) = self.prefixes();
                let used = spans_width(&first);
                let mut spans = first;
                spans.push(Span::styled("─".repeat(self.width.saturating_sub(used).max(1)), theme::DIM));
                self.out.push(Line::from(spans));
                self.blank_before_next = true;
            }
            Event::TaskListMarker(done) => self.push_text(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock => {
                self.flush();
                self.block_start();
            }
            Tag::Heading { level, .. } => {
                self.flush();
                self.block_start();
                self.styles.push(match level {
                    HeadingLevel::H1 => theme::H1,
                    HeadingLevel::H2 => theme::H2,
                    _ => theme::H3,
                });
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.block_start();
                self.containers.push(Container::Quote);
            }
            Tag::CodeBlock(kind) => {
                self.flush();
                self.block_start();
                let language = match kind {
                    CodeBlockKind::Fenced(info) => Language::from_info(&info),
                    CodeBlockKind::Indented => None,
                };
                self.code = Some((language, String::new()));
            }
            Tag::List(start) => {
                self.flush();
                let depth = self.containers.iter().filter(|c| matches!(c, Container::List { .. })).count();
                if depth == 0 {
                    self.block_start();
                }
                self.containers.push(Container::List { next: start, depth });
            }
            Tag::Item => {
                self.flush();
                let marker = match self.containers.iter_mut().rev().find(|c| matches!(c, Container::List { .. })) {
                    Some(Container::List { next: Some(n), .. }) => {
                        let m = format!("{n}. ");
                        *n += 1;
                        m
                    }
                    Some(Container::List { depth, .. }) => ["• ", "◦ ", "▪ "][*depth % 3].to_string(),
                    _ => "• ".to_string(),
                };
                self.containers.push(Container::Item { marker, drawn: false });
            }
            Tag::Emphasis => self.styles.push(Style::new().add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.styles.push(Style::new().add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self.styles.push(Style::new().add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { dest_url, .. } => {
                self.links.push((dest_url.to_string(), self.inline.len()));
                self.styles.push(theme::LINK);
            }
            Tag::Image { dest_url, .. } => {
                self.push_text("[image: ");
                self.links.push((dest_url.to_string(), self.inline.len()));
                self.styles.push(Style::new());
            }
            Tag::Table(alignments) => {
                self.flush();
                self.block_start();
                self.table = Some(Table { alignments, ..Table::default() });
            }
            Tag::TableHead | Tag::TableRow => {
                if let Some(t) = &mut self.table {
                    t.rows.push(Vec::new());
                }
            }
            Tag::TableCell => self.inline.clear(),
            Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::MetadataBlock(_)
            | Tag::Superscript
            | Tag::Subscript => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock => {
                self.flush();
                self.blank_before_next = true;
            }
            TagEnd::Heading(_) => {
                self.flush();
                self.styles.pop();
                self.blank_before_next = true;
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.containers.pop();
                self.blank_before_next = true;
            }
            TagEnd::CodeBlock => {
                // An empty block draws nothing (also the closing fence of a
                // block whose lines went to the scrollback while streaming).
                self.after_block = true;
                if let Some((language, code)) = self.code.take().filter(|(_, code)| !code.is_empty()) {
                    let code = code.strip_suffix('\n').unwrap_or(&code);
                    for line in highlight(language, code) {
                        let (mut first, mut rest) = self.prefixes();
                        first.push(Span::raw("  "));
                        rest.push(Span::raw("  "));
                        self.out.extend(wrap_columns(&line, self.width, &first, &rest));
                    }
                }
                self.blank_before_next = true;
            }
            TagEnd::List(_) => {
                self.flush();
                self.containers.pop();
                self.blank_before_next = true;
            }
            TagEnd::Item => {
                self.flush();
                if let Some(Container::Item { drawn: false, .. }) = self.containers.last() {
                    let (first, _) = self.prefixes();
                    self.out.push(Line::from(first));
                }
                self.containers.pop();
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => {
                self.styles.pop();
            }
            TagEnd::Link | TagEnd::Image => {
                self.styles.pop();
                if let Some((url, from)) = self.links.pop() {
                    let shown: String =
                        self.inline[from.min(self.inline.len())..].iter().map(|s| s.content.as_ref()).collect();
                    if tag == TagEnd::Image {
                        self.push_text("]");
                    }
                    if !url.is_empty() && shown.trim() != url.trim() {
                        self.inline.push(Span::styled(format!(" ({url})"), theme::DIM));
                    }
                }
            }
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.inline);
                if let Some(row) = self.table.as_mut().and_then(|t| t.rows.last_mut()) {
                    row.push(cell);
                }
            }
            TagEnd::TableHead => {
                if let Some(t) = &mut self.table {
                    t.header_rows = t.rows.len();
                }
            }
            TagEnd::TableRow => {}
            TagEnd::Table => {
                if let Some(table) = self.table.take() {
                    self.table(table);
                }
                self.blank_before_next = true;
            }
            TagEnd::FootnoteDefinition
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition
            | TagEnd::MetadataBlock(_)
            | TagEnd::Superscript
            | TagEnd::Subscript => {}
        }
    }

    /// A table as aligned columns when it fits, otherwise one wrapped line
    /// per row with cells separated by `│`.
    fn table(&mut self, table: Table) {
        let columns = table.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &table.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(spans_width(cell));
            }
        }
        let (first, _) = self.prefixes();
        let indent = spans_width(&first);
        let total = indent + widths.iter().sum::<usize>() + 3 * columns.saturating_sub(1);
        let fits = total <= self.width && table.rows.iter().flatten().flatten().all(|s| !s.content.contains('\n'));
        for (r, row) in table.rows.iter().enumerate() {
            let (mut spans, rest) = self.prefixes();
            if fits {
                for (i, width) in widths.iter().enumerate() {
                    if i > 0 {
                        spans.push(Span::styled(" │ ", theme::DIM));
                    }
                    let cell = row.get(i).cloned().unwrap_or_default();
                    let pad = width - spans_width(&cell);
                    let (left, right) = match table.alignments.get(i) {
                        Some(Alignment::Right) => (pad, 0),
                        Some(Alignment::Center) => (pad / 2, pad - pad / 2),
                        _ => (0, pad),
                    };
                    let bold = r < table.header_rows;
                    spans.push(Span::raw(" ".repeat(left)));
                    spans.extend(cell.into_iter().map(|s| if bold { s.patch_style(theme::H2) } else { s }));
                    if i + 1 < columns {
                        spans.push(Span::raw(" ".repeat(right)));
                    }
                }
                self.out.push(Line::from(spans));
                if r + 1 == table.header_rows {
                    let (mut rule, _) = self.prefixes();
                    let cross: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
                    rule.push(Span::styled(cross.join("─┼─"), theme::DIM));
                    self.out.push(Line::from(rule));
                }
            } else {
                let mut cells: Vec<Span<'static>> = Vec::new();
                for (i, cell) in row.iter().enumerate() {
                    if i > 0 {
                        cells.push(Span::styled(" │ ", theme::DIM));
                    }
                    cells.extend(cell.iter().cloned());
                }
                let first = std::mem::take(&mut spans);
                self.out.extend(wrap(&cells, self.width, &first, &rest));
            }
        }
    }
}

/// A model's answer as it streams: pieces are sanitised as they arrive
/// (a sequence split across pieces is caught), the whole pending text is
/// re-rendered on demand, and blocks that can no longer change can be taken
/// out to be written into the terminal's scrollback.
#[derive(Debug, Default)]
pub struct MarkdownStream {
    stream: airlock_redact::terminal::TerminalStream,
    text: String,
}

impl MarkdownStream {
    /// An empty stream.
    pub fn new() -> MarkdownStream {
        MarkdownStream::default()
    }

    /// Adds a piece of the answer.
    pub fn push(&mut self, delta: &str) {
        let safe = self.stream.push(delta);
        self.text.push_str(&safe);
    }

    /// The text not yet taken (sanitised).
    pub fn pending(&self) -> &str {
        &self.text
    }

    /// The text not yet taken, rendered (for the live viewport).
    pub fn lines(&self, width: u16) -> Vec<Line<'static>> {
        if self.text.is_empty() {
            return Vec::new();
        }
        markdown(&self.text, width)
    }

    /// Takes what later text cannot change and renders it, for the
    /// scrollback: the leading blocks that end before a blank line followed
    /// by a line at the margin, or before a code fence at the margin (with
    /// the blank line that separates them from what follows), and then the
    /// complete lines of a code block still streaming (a long block scrolls
    /// by instead of waiting for its closing fence; a comment or string
    /// spanning the cut may lose its colour, never its text). Empty when
    /// nothing is finished.
    pub fn take_finished(&mut self, width: u16) -> Vec<Line<'static>> {
        let mut lines = Vec::new();
        if let Some(cut) = finished_prefix(&self.text) {
            let done: String = self.text.drain(..cut).collect();
            lines = markdown(&done, width);
            // The blank line between blocks, also after the closing fence of
            // a code block whose lines were taken already (it draws nothing).
            if !done.trim().is_empty() {
                lines.push(Line::default());
            }
        }
        if let Some(open) = open_fence(&self.text) {
            let opener = self.text[..open.body_start].to_string();
            let body: String = self.text.drain(open.body_start..open.body_end).collect();
            let closing = open.marker.to_string().repeat(open.run);
            lines.extend(markdown(&format!("{opener}{body}{closing}\n"), width));
        }
        lines
    }

    /// Ends the stream: renders and takes everything left.
    pub fn finish(&mut self, width: u16) -> Vec<Line<'static>> {
        let tail = self.stream.finish();
        self.text.push_str(&tail);
        let text = std::mem::take(&mut self.text);
        if text.trim().is_empty() { Vec::new() } else { markdown(&text, width) }
    }
}

/// The marker and length of the fence `line` (without its newline) opens
/// or closes, if it is one (at most three spaces of indentation).
fn fence_of(line: &str) -> Option<(char, usize)> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    ['`', '~'].into_iter().find_map(|marker| {
        let run = trimmed.chars().take_while(|&c| c == marker).count();
        (run >= 3).then_some((marker, run))
    })
}

/// The length of the longest prefix of `text` made of finished blocks: it
/// ends, outside any code fence, at the start of a line that begins at the
/// margin (not a space) and follows a blank line, or at a fence at the
/// margin (a fence ends a paragraph, a list and a quote before it).
fn finished_prefix(text: &str) -> Option<usize> {
    let mut fence: Option<(char, usize)> = None;
    let mut previous_blank = false;
    let mut cut = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches('\n');
        let at_margin = body.chars().next().is_some_and(|c| !c.is_whitespace());
        let this_fence = fence_of(body);
        if fence.is_none() && start > 0 && at_margin && (previous_blank || this_fence.is_some()) {
            cut = Some(start);
        }
        if let Some((marker, run)) = this_fence {
            match fence {
                None => fence = Some((marker, run)),
                Some((m, n)) if m == marker && run >= n && body.trim_start()[run..].trim().is_empty() => fence = None,
                Some(_) => {}
            }
        }
        previous_blank = line.ends_with('\n') && body.trim().is_empty();
    }
    cut
}

/// A code block at the start of the text, still open, with complete lines.
struct OpenFence {
    marker: char,
    run: usize,
    /// Where its body starts (after the opening line).
    body_start: usize,
    /// Where its last complete line ends.
    body_end: usize,
}

/// The code block `text` starts with, if it is still open and has complete
/// lines after its opening line.
fn open_fence(text: &str) -> Option<OpenFence> {
    let mut lines = text.split_inclusive('\n');
    let opener = lines.next().filter(|l| l.ends_with('\n'))?;
    if !opener.starts_with(|c: char| !c.is_whitespace()) {
        return None;
    }
    let (marker, run) = fence_of(opener.trim_end_matches('\n'))?;
    let body_start = opener.len();
    let mut body_end = body_start;
    for line in lines {
        let body = line.trim_end_matches('\n');
        if fence_of(body).is_some_and(|(m, n)| m == marker && n >= run && body.trim_start()[n..].trim().is_empty()) {
            return None;
        }
        if !line.ends_with('\n') {
            break;
        }
        body_end += line.len();
    }
    (body_end > body_start).then_some(OpenFence { marker, run, body_start, body_end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::text::plain;

    #[test]
    fn finished_blocks_end_before_a_line_at_the_margin() {
        assert_eq!(finished_prefix("a\n\nb"), Some(3));
        assert_eq!(finished_prefix("a\n\n"), None);
        assert_eq!(finished_prefix("a\n\n  b"), None, "an indented line may continue a list item");
        assert_eq!(finished_prefix("```\na\n\nb"), None, "inside a fence");
        assert_eq!(finished_prefix("```\na\n\nb\n```\n\nc"), Some(14));
        assert_eq!(finished_prefix("Here:\n```rust\nx"), Some(6), "a fence ends the paragraph");
        assert_eq!(finished_prefix("```rust\nx"), None);
    }

    #[test]
    fn a_long_code_block_scrolls_by_while_it_streams() {
        let mut s = MarkdownStream::new();
        s.push("Here:\n```python\ndef f():\n    return 1\nprint(f(");
        let taken = plain(&s.take_finished(40));
        assert_eq!(taken, "Here:\n\n  def f():\n      return 1");
        assert_eq!(s.pending(), "```python\nprint(f(");
        assert_eq!(plain(&s.lines(40)), "  print(f(");
        assert!(s.take_finished(40).is_empty(), "nothing new is complete");
        s.push("))\n```\n\nDone.");
        let rest = plain(&s.take_finished(40)) + "\n" + &plain(&s.finish(40));
        assert_eq!(rest, "  print(f())\n\nDone.");
        assert!(open_fence("```\na\n```\n").is_none(), "closed");
        assert!(open_fence("```\na").is_none(), "no complete line");
    }

    #[test]
    fn a_stream_renders_like_the_whole_text() {
        let answer = "# Plan\n\nFirst *this*.\n\n- one\n- two\n\n```rust\nfn main() {}\n```\n\nDone.\nHere:\n~~~sh\nls\n\necho\n~~~\n> q";
        let mut s = MarkdownStream::new();
        let mut shown = Vec::new();
        for c in answer.chars() {
            s.push(&c.to_string());
            shown.extend(s.take_finished(40));
        }
        shown.extend(s.finish(40));
        assert_eq!(plain(&shown), plain(&markdown(answer, 40)));
    }

    #[test]
    fn a_numbered_list_keeps_its_numbers_across_blocks() {
        let lines = markdown("1. a\n2. b\n\n   more\n3. c", 40);
        let shown = plain(&lines);
        assert!(shown.contains("1. a") && shown.contains("3. c"), "{shown}");
    }
}
