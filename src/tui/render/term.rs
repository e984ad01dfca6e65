//! The vt100 → ratatui widget: copies an agent's emulated screen cell by cell into a buffer area,
//! with colours and attributes. When the screen is taller or wider than the area, the rows around
//! the cursor (the bottom, in practice) and the left columns are shown.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};

use crate::agent::screen::SharedScreen;

fn colour(c: vt100::Color) -> Option<Color> {
    match c {
        vt100::Color::Default => None,
        vt100::Color::Idx(i) => Some(Color::Indexed(i)),
        vt100::Color::Rgb(r, g, b) => Some(Color::Rgb(r, g, b)),
    }
}

/// Draws the screen into `area`; returns where its cursor is (in buffer coordinates) when it is
/// visible inside the area.
pub fn draw_screen(
    screen: &SharedScreen,
    area: Rect,
    buf: &mut Buffer,
    color: bool,
) -> Option<Position> {
    if area.width == 0 || area.height == 0 {
        return None;
    }
    // A poisoned lock means a reader thread panicked mid-update; the parser's state is still a
    // valid screen, so draw it rather than a blank pane.
    let parser = match screen.lock() {
        Ok(p) => p,
        Err(poisoned) => poisoned.into_inner(),
    };
    let sc = parser.screen();
    let (rows, cols) = sc.size();
    let (rows, cols) = (rows.get(), cols.get());
    let (cur_row, cur_col) = sc.cursor_position();
    // Keep the cursor row in view: skip rows from the top only when they do not fit.
    let first_row = if rows > area.height {
        (cur_row + 1)
            .saturating_sub(area.height)
            .min(rows - area.height)
    } else {
        0
    };
    for y in 0..area.height.min(rows - first_row) {
        for x in 0..area.width.min(cols) {
            let Some(cell) = sc.cell(first_row + y, x) else {
                continue;
            };
            if cell.is_wide_continuation() {
                continue;
            }
            let (text, style) = cell_look(cell, color);
            if let Some(out) = buf.cell_mut(Position::new(area.x + x, area.y + y)) {
                out.set_symbol(text).set_style(style);
            }
        }
    }
    let visible = !sc.hide_cursor()
        && cur_row >= first_row
        && cur_row - first_row < area.height
        && cur_col < area.width;
    visible.then(|| Position::new(area.x + cur_col, area.y + cur_row - first_row))
}

/// A screen cell's symbol and style.
fn cell_look(cell: &vt100::Cell, color: bool) -> (&str, Style) {
    let mut style = Style::default();
    if color {
        if let Some(c) = colour(cell.fgcolor()) {
            style = style.fg(c);
        }
        if let Some(c) = colour(cell.bgcolor()) {
            style = style.bg(c);
        }
    }
    let mut m = Modifier::empty();
    if cell.bold() {
        m |= Modifier::BOLD;
    }
    if cell.dim() {
        m |= Modifier::DIM;
    }
    if cell.italic() {
        m |= Modifier::ITALIC;
    }
    if cell.underline() {
        m |= Modifier::UNDERLINED;
    }
    if cell.inverse() {
        m |= Modifier::REVERSED;
    }
    style = style.add_modifier(m);
    let text = if cell.has_contents() {
        cell.contents()
    } else {
        " "
    };
    (text, style)
}

/// Draws the screen into a pane narrower than it, its rows wrapped rather than cut: each row
/// (trailing blanks dropped) takes as many pane lines as it needs, and the last lines up to the
/// cursor's row are shown. A screen that fits is drawn as it is.
pub fn draw_screen_wrapped(screen: &SharedScreen, area: Rect, buf: &mut Buffer, color: bool) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let parser = match screen.lock() {
        Ok(p) => p,
        Err(poisoned) => poisoned.into_inner(),
    };
    let sc = parser.screen();
    let (rows, cols) = (sc.size().0.get(), sc.size().1.get());
    if cols <= area.width {
        drop(parser);
        draw_screen(screen, area, buf, color);
        return;
    }
    let used = |r: u16| {
        (0..cols)
            .rev()
            .find(|&c| sc.cell(r, c).is_some_and(|cell| cell.has_contents()))
            .map_or(0, |c| c + 1)
    };
    let last_row = (0..rows)
        .rev()
        .find(|&r| used(r) > 0)
        .unwrap_or(0)
        .max(sc.cursor_position().0.min(rows.saturating_sub(1)));
    // (row, first column) of every pane line, oldest first.
    let mut lines: Vec<(u16, u16)> = Vec::new();
    for r in 0..=last_row {
        let n = used(r).div_ceil(area.width).max(1);
        lines.extend((0..n).map(|k| (r, k * area.width)));
    }
    let skip = lines.len().saturating_sub(usize::from(area.height));
    for (y, (r, start)) in lines.into_iter().skip(skip).enumerate() {
        let y = u16::try_from(y).unwrap_or(u16::MAX);
        for x in 0..area.width.min(cols - start) {
            let Some(cell) = sc.cell(r, start + x) else {
                continue;
            };
            if cell.is_wide_continuation() {
                continue;
            }
            let (text, style) = cell_look(cell, color);
            if let Some(out) = buf.cell_mut(Position::new(area.x + x, area.y + y)) {
                out.set_symbol(text).set_style(style);
            }
        }
    }
}

/// Plain text rows of a screen (for the logs view of live agents), trailing blanks dropped.
pub fn screen_lines(screen: &SharedScreen) -> Vec<String> {
    let parser = match screen.lock() {
        Ok(p) => p,
        Err(poisoned) => poisoned.into_inner(),
    };
    let text = parser.screen().contents();
    let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// True while the agent holds synchronized output (?2026), within the lock's own timeout.
pub fn is_locked(screen: &SharedScreen, now: std::time::Instant) -> bool {
    screen
        .lock()
        .map(|p| p.callbacks().is_render_locked(now))
        .unwrap_or(false)
}
