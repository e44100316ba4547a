//! The terminal as the session uses it: the conversation goes into the
//! terminal's own scrollback (so it can be scrolled, searched and copied
//! with the terminal's tools), and a small live area below it is redrawn:
//! the streaming answer, an approval, the prompt and the status line.
//!
//! The live area is a ratatui viewport at a fixed position that this type
//! moves: finished lines are drawn where the live area was and the live
//! area moves down; at the bottom of the screen, the rows above it scroll
//! up inside a scrolling region, so the top lines go to the scrollback.
//! No cursor position is ever asked of the terminal after the start: an
//! answer would race with the thread that reads keys.

use std::io::{self, Stdout, Write};

use crossterm::{cursor, execute, terminal};
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Text};
use ratatui::widgets::{Paragraph, Widget};
use ratatui::{Frame, Terminal, TerminalOptions, Viewport};

/// The terminal, in raw mode, with the live area at rows `top..top + height`.
pub struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    cols: u16,
    rows: u16,
    top: u16,
    height: u16,
    /// `NO_COLOR` is set: styles without colours (the panel stays distinct, reversed).
    no_color: bool,
    /// The row the cursor stands on (the prompt's), when it is shown.
    cursor_row: Option<u16>,
}

impl Screen {
    /// Takes the terminal: raw mode, bracketed paste, the live area where the cursor is.
    pub fn start() -> io::Result<Screen> {
        terminal::enable_raw_mode()?;
        execute!(io::stdout(), crossterm::event::EnableBracketedPaste)?;
        let (cols, rows) = terminal::size()?;
        // The one question asked of the terminal, before anything else reads keys.
        let (_, row) = cursor::position().unwrap_or((0, rows.saturating_sub(1)));
        let area = Rect::new(0, row, cols, 1);
        let terminal = Terminal::with_options(
            CrosstermBackend::new(io::stdout()),
            TerminalOptions { viewport: Viewport::Fixed(area) },
        )?;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ok(Screen { terminal, cols, rows, top: row, height: 1, no_color, cursor_row: None })
    }

    /// The terminal's width.
    pub fn width(&self) -> u16 {
        self.cols
    }

    /// The terminal's height.
    pub fn rows(&self) -> u16 {
        self.rows
    }

    fn area(&self) -> Rect {
        Rect::new(0, self.top, self.cols, self.height)
    }

    /// Rows `0..top` move up by `n` (the top ones into the scrollback).
    fn scroll_history(&mut self, n: u16) -> io::Result<()> {
        let n = n.min(self.top);
        if n > 0 {
            self.terminal.backend_mut().scroll_region_up(0..self.top, n)?;
            self.top -= n;
        }
        Ok(())
    }

    /// Makes the live area `height` rows (history scrolls up to make room).
    pub fn set_height(&mut self, height: u16) -> io::Result<()> {
        let height = height.clamp(1, self.rows.max(1));
        if height == self.height {
            return Ok(());
        }
        if self.top + height > self.rows {
            self.scroll_history(self.top + height - self.rows)?;
        }
        self.height = height;
        self.clear_below()?;
        self.terminal.resize(self.area())
    }

    /// Clears from the live area's top to the end of the screen.
    fn clear_below(&mut self) -> io::Result<()> {
        let mut out = io::stdout();
        execute!(out, cursor::MoveTo(0, self.top), terminal::Clear(terminal::ClearType::FromCursorDown))
    }

    /// Puts finished lines into the conversation above the live area.
    pub fn insert(&mut self, lines: &[Line<'static>]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let chunk = usize::from(self.rows.saturating_sub(self.height).max(1));
        for part in lines.chunks(chunk) {
            let n = part.len() as u16;
            let room = self.rows.saturating_sub(self.height).saturating_sub(self.top);
            if n > room {
                self.scroll_history(n - room)?;
            }
            let area = Rect::new(0, self.top, self.cols, n);
            let mut buffer = Buffer::empty(area);
            Paragraph::new(Text::from(part.to_vec())).render(area, &mut buffer);
            if self.no_color {
                crate::view::theme::without_colors(&mut buffer);
            }
            let cols = usize::from(self.cols.max(1));
            let top = self.top;
            let cells =
                buffer.content.iter().enumerate().map(|(i, cell)| ((i % cols) as u16, top + (i / cols) as u16, cell));
            self.terminal.backend_mut().draw(cells)?;
            self.top = (self.top + n).min(self.rows.saturating_sub(self.height));
        }
        Backend::flush(self.terminal.backend_mut())?;
        self.clear_below()?;
        self.terminal.resize(self.area())
    }

    /// The terminal changed size. It has reflowed its lines and moved rows
    /// where it liked, and where the live area went is unknown; but the
    /// cursor moved with the text, and it stood in the live area's prompt.
    /// So the old live area is erased from the cursor's line up by its
    /// offset (never more: what is above is the conversation), the screen is
    /// scrolled into the scrollback by line feeds, and the live area starts
    /// again at the top.
    pub fn resized(&mut self, cols: u16, rows: u16) -> io::Result<()> {
        let up = self.cursor_row.map_or(0, |row| row.saturating_sub(self.top));
        let mut out = io::stdout();
        crossterm::queue!(out, cursor::MoveToColumn(0))?;
        if up > 0 {
            crossterm::queue!(out, cursor::MoveUp(up))?;
        }
        crossterm::queue!(out, terminal::Clear(terminal::ClearType::FromCursorDown))?;
        out.write_all("\n".repeat(usize::from(rows)).as_bytes())?;
        out.flush()?;
        self.cols = cols;
        self.rows = rows;
        self.height = self.height.min(rows.max(1));
        self.top = 0;
        self.cursor_row = None;
        self.clear_below()?;
        self.terminal.resize(self.area())
    }

    /// Where the cursor was put in the last frame (an absolute row), for a resize.
    pub fn note_cursor(&mut self, row: Option<u16>) {
        self.cursor_row = row;
    }

    /// Draws the live area.
    pub fn draw(&mut self, render: impl FnOnce(&mut Frame<'_>)) -> io::Result<()> {
        let no_color = self.no_color;
        self.terminal
            .draw(|frame| {
                render(frame);
                if no_color {
                    crate::view::theme::without_colors(frame.buffer_mut());
                }
            })
            .map(|_| ())
    }

    /// A first frame while the session starts (the sandbox, the broker, the
    /// log take a moment): one dim line in the live area.
    pub fn starting(&mut self, text: &str) -> io::Result<()> {
        let line = Line::styled(crate::view::text::clean_line(text), crate::view::theme::DIM);
        self.set_height(1)?;
        self.draw(|frame| {
            let area = frame.area();
            Paragraph::new(line).render(area, frame.buffer_mut());
        })
    }

    /// Gives the terminal back: the live area cleared, the cursor below the conversation.
    pub fn finish(&mut self) -> io::Result<()> {
        self.clear_below()?;
        let mut out = io::stdout();
        execute!(out, crossterm::event::DisableBracketedPaste, cursor::Show)?;
        terminal::disable_raw_mode()?;
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // A panic or an early return must not leave the terminal raw.
        let _ = terminal::disable_raw_mode();
    }
}
