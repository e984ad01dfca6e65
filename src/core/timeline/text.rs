//! The timeline as rows of characters, each tagged with its phase, for the TUI (which colours
//! them) and `orch-tui timeline` (plain, or with ANSI colours): a time axis, the human's
//! decisions, one bar and one row of task names per lane, spend as a sparkline, a legend with
//! totals.

use super::{Phase, Timeline, column, human_ms, raster, sparkline};

/// What a row is (the renderer styles by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Axis,
    Human,
    Bar,
    Names,
    Spend,
    Legend,
    Summary,
}

/// One row: a label column, then characters with the phase each stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub kind: RowKind,
    pub label: String,
    pub cells: Vec<(char, Option<Phase>)>,
}

impl Row {
    fn plain(kind: RowKind, label: &str, text: &str) -> Row {
        Row {
            kind,
            label: label.to_string(),
            cells: text.chars().map(|c| (c, None)).collect(),
        }
    }

    /// The row as text (label padded to `label_w`), trailing blanks trimmed.
    pub fn text(&self, label_w: usize) -> String {
        let mut s = format!("{:<label_w$}", self.label);
        s.extend(self.cells.iter().map(|(c, _)| *c));
        s.trim_end().to_string()
    }
}

/// Width of the label column.
pub const LABEL_W: usize = 8;

/// Lays the timeline out in `width` columns (label included).
pub fn rows(tl: &Timeline, width: usize) -> Vec<Row> {
    let bar_w = width.saturating_sub(LABEL_W).max(10);
    let mut out = vec![axis(tl, bar_w)];
    let mut you = vec![(' ', None); bar_w];
    for m in &tl.marks {
        you[column(tl, m.ts_ms, bar_w)] = (m.glyph(), None);
    }
    out.push(Row {
        kind: RowKind::Human,
        label: "you".into(),
        cells: you,
    });
    for (i, lane) in tl.lanes.iter().enumerate() {
        out.push(Row {
            kind: RowKind::Bar,
            label: format!("slot {}", i + 1),
            cells: raster(tl, i, bar_w)
                .into_iter()
                .map(|p| (p.map_or(' ', Phase::glyph), p))
                .collect(),
        });
        // Each trip's task id where it starts, as far as the next trip leaves room.
        let mut names = vec![' '; bar_w];
        let starts: Vec<(usize, &str)> = lane
            .iter()
            .enumerate()
            .filter(|(k, s)| {
                *k == 0 || lane[k - 1].task != s.task || lane[k - 1].end_ms < s.start_ms
            })
            .map(|(_, s)| (column(tl, s.start_ms, bar_w), s.task.as_str()))
            .collect();
        for (k, (col, task)) in starts.iter().enumerate() {
            let until = starts.get(k + 1).map_or(bar_w, |n| n.0).min(bar_w);
            for (j, c) in task.chars().enumerate() {
                let at = col + j;
                if at + 1 >= until && at + 1 != bar_w {
                    break;
                }
                if at < bar_w {
                    names[at] = c;
                }
            }
        }
        out.push(Row::plain(
            RowKind::Names,
            "",
            &names.into_iter().collect::<String>(),
        ));
    }
    let spend = if tl.spend.is_empty() {
        "no spend reported".to_string()
    } else {
        sparkline(tl, bar_w)
    };
    out.push(Row::plain(RowKind::Spend, "spend", &spend));
    out.extend(legend(tl, width));
    out.push(Row::plain(RowKind::Summary, "", &summary(tl)));
    out
}

fn axis(tl: &Timeline, bar_w: usize) -> Row {
    let mut cells = vec![(' ', None); bar_w];
    let span = tl.end_ms - tl.start_ms;
    let ticks = (bar_w / 20).clamp(1, 8);
    for k in 0..=ticks {
        let col = (bar_w - 1) * k / ticks;
        let label = format!("|{}", human_ms(span * k as u64 / ticks as u64));
        // The last label ends at the right edge.
        let at = if k == ticks {
            bar_w.saturating_sub(label.chars().count())
        } else {
            col
        };
        for (j, c) in label.chars().enumerate() {
            if let Some(cell) = cells.get_mut(at + j) {
                *cell = (c, None);
            }
        }
    }
    Row {
        kind: RowKind::Axis,
        label: "time".into(),
        cells,
    }
}

fn legend(tl: &Timeline, width: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut cur: Vec<(char, Option<Phase>)> = Vec::new();
    for p in Phase::ALL {
        let amount = if p == Phase::Failed {
            if tl.failures == 0 {
                continue;
            }
            format!("{}", tl.failures)
        } else {
            match tl.totals.get(&p) {
                Some(&ms) if ms > 0 => human_ms(ms),
                _ => continue,
            }
        };
        let item = format!(" {} {amount}  ", p.words());
        if !cur.is_empty() && cur.len() + item.chars().count() + 1 > width.saturating_sub(LABEL_W) {
            rows.push(std::mem::take(&mut cur));
        }
        cur.push((p.glyph(), Some(p)));
        cur.extend(item.chars().map(|c| (c, None)));
    }
    if !cur.is_empty() {
        rows.push(cur);
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, cells)| Row {
            kind: RowKind::Legend,
            label: if i == 0 {
                "total".into()
            } else {
                String::new()
            },
            cells,
        })
        .collect()
}

/// "agents waited 14m00s for you · merge queue 40s · 1 failure".
pub fn summary(tl: &Timeline) -> String {
    let mut parts = vec![format!(
        "agents waited {} for you",
        human_ms(tl.waited_for_human_ms())
    )];
    if let Some(&ms) = tl.totals.get(&Phase::MergeQueue) {
        parts.push(format!("the merge queue {}", human_ms(ms)));
    }
    if tl.failures > 0 {
        parts.push(format!(
            "{} failure{}",
            tl.failures,
            if tl.failures == 1 { "" } else { "s" }
        ));
    }
    let usd: f64 = tl.spend.iter().map(|s| s.cost_usd).sum();
    let tokens: u64 = tl.spend.iter().map(|s| s.tokens).sum();
    if usd > 0.0 {
        parts.push(format!("spent ${usd:.2}"));
    } else if tokens > 0 {
        parts.push(format!("{tokens} tokens"));
    }
    parts.join(" · ")
}
