//! Where a run's time went, from its event log alone: each task's trips through the pipeline as
//! segments by phase (starting, working, waiting for input, review, waiting for the human, merge
//! queue, failed), packed into lanes (one row per agent slot while agents run), the human's
//! decisions as marks, totals per phase and spend over time. Pure: the caller reads the events.

use std::collections::BTreeMap;

use serde::Serialize;

use super::domain::{Actor, EventKind, FunnelStage};
use super::ops::EventData;
use super::state::TaskState;

pub mod text;

/// One event as the timeline needs it (from the ledger's `events` table).
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEvent {
    pub ts_ms: u64,
    pub task: Option<String>,
    pub attempt: Option<u32>,
    pub actor: Actor,
    pub kind: EventKind,
    pub data: EventData,
}

/// What a task was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A slot took it: worktree and agent being set up.
    Starting,
    /// Its agent works.
    Working,
    /// Its agent asked a question and waits for an answer.
    WaitingInput,
    /// Checks and the reviewer agent.
    Review,
    /// Waiting for the human: an approval, a veto window, an escalation.
    Human,
    /// Approved, in the merge queue or merging.
    MergeQueue,
    /// Held by the human.
    Paused,
    /// It failed here (a mark at the end of its trip).
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 8] = [
        Phase::Starting,
        Phase::Working,
        Phase::WaitingInput,
        Phase::Review,
        Phase::Human,
        Phase::MergeQueue,
        Phase::Paused,
        Phase::Failed,
    ];

    pub fn words(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Working => "working",
            Phase::WaitingInput => "waiting for input",
            Phase::Review => "review",
            Phase::Human => "waiting for you",
            Phase::MergeQueue => "merge queue",
            Phase::Paused => "paused",
            Phase::Failed => "failed",
        }
    }

    /// One character per phase, so a bar reads without colours too.
    pub fn glyph(self) -> char {
        match self {
            Phase::Starting => '░',
            Phase::Working => '█',
            Phase::WaitingInput => '▚',
            Phase::Review => '▒',
            Phase::Human => '▓',
            Phase::MergeQueue => '≡',
            Phase::Paused => '┄',
            Phase::Failed => '✗',
        }
    }
}

/// A stretch of one task in one phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub task: String,
    pub attempt: Option<u32>,
    pub phase: Phase,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Something the human decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    pub ts_ms: u64,
    pub task: String,
    /// `approve`, `reject`, `retry`, `cancel`, `pause`, `resume`, `answer`.
    pub what: String,
    /// The lane of the task's trip at that moment, if it was on one.
    pub lane: Option<usize>,
}

impl Mark {
    pub fn glyph(&self) -> char {
        match self.what.as_str() {
            "approve" => 'A',
            "reject" => 'X',
            "retry" => 'R',
            "cancel" => 'C',
            "pause" => 'P',
            "resume" => 'U',
            "answer" => '!',
            _ => '◆',
        }
    }
}

/// Spend reported at a moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spend {
    pub ts_ms: u64,
    pub cost_usd: f64,
    pub tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub start_ms: u64,
    pub end_ms: u64,
    /// Each lane's segments, in time order; a task's trip stays on one lane.
    pub lanes: Vec<Vec<Segment>>,
    pub marks: Vec<Mark>,
    /// Milliseconds spent in each phase, over every task (`Failed` counts failures, not time).
    pub totals: BTreeMap<Phase, u64>,
    pub failures: usize,
    pub spend: Vec<Spend>,
}

impl Timeline {
    /// The time the run's agents spent waiting for the human (questions, approvals,
    /// escalations).
    pub fn waited_for_human_ms(&self) -> u64 {
        self.totals.get(&Phase::WaitingInput).copied().unwrap_or(0)
            + self.totals.get(&Phase::Human).copied().unwrap_or(0)
    }
}

/// A task's current whereabouts while the events are replayed.
#[derive(Debug, Default)]
struct TaskNow {
    state: Option<TaskState>,
    stage: Option<FunnelStage>,
    question: bool,
    attempt: Option<u32>,
    /// The open segment: its phase and start.
    open: Option<(Phase, u64)>,
    /// Segments of the current trip (not yet on a lane).
    trip: Vec<Segment>,
}

fn phase_of(t: &TaskNow) -> Option<Phase> {
    Some(match t.state? {
        TaskState::Assigned => Phase::Starting,
        TaskState::Working if t.question => Phase::WaitingInput,
        TaskState::Working => Phase::Working,
        TaskState::Review => match t.stage {
            Some(FunnelStage::Human | FunnelStage::Veto) => Phase::Human,
            _ => Phase::Review,
        },
        TaskState::Escalated => Phase::Human,
        TaskState::Approved | TaskState::Merging => Phase::MergeQueue,
        TaskState::Paused => Phase::Paused,
        _ => return None,
    })
}

/// Builds the timeline of `events` (oldest first) up to `now_ms`.
pub fn build(events: &[TimelineEvent], now_ms: u64) -> Timeline {
    let mut tasks: BTreeMap<String, TaskNow> = BTreeMap::new();
    let mut trips: Vec<Vec<Segment>> = Vec::new();
    let mut marks = Vec::new();
    let mut spend = Vec::new();
    let mut failures = 0;
    let mut start_ms: Option<u64> = None;
    for e in events {
        let Some(task) = e.task.clone() else {
            continue;
        };
        let t = tasks.entry(task.clone()).or_default();
        let before = phase_of(t);
        match e.kind {
            EventKind::State => {
                if let Some(to) = e.data.to {
                    t.state = Some(to);
                    if to != TaskState::Review {
                        t.stage = None;
                    }
                    if to != TaskState::Working {
                        t.question = false;
                    }
                    if to == TaskState::Failed {
                        failures += 1;
                    }
                    if e.actor == Actor::Human {
                        let what = e
                            .data
                            .command
                            .clone()
                            .unwrap_or_else(|| to.as_str().to_string());
                        marks.push((e.ts_ms, task.clone(), what));
                    }
                }
            }
            EventKind::Funnel => t.stage = e.data.stage,
            EventKind::AgentQuestion => t.question = true,
            EventKind::Answered => {
                t.question = false;
                marks.push((e.ts_ms, task.clone(), "answer".to_string()));
            }
            EventKind::AttemptEnded => t.question = false,
            EventKind::AttemptStarted => t.attempt = e.attempt,
            EventKind::Usage => {
                let tokens = e.data.tokens_in.unwrap_or(0) + e.data.tokens_out.unwrap_or(0);
                spend.push(Spend {
                    ts_ms: e.ts_ms,
                    cost_usd: e.data.cost_usd.unwrap_or(0.0).max(0.0),
                    tokens,
                });
            }
            _ => {}
        }
        let after = phase_of(t);
        if before == after && !(e.kind == EventKind::State && e.data.to == Some(TaskState::Failed))
        {
            continue;
        }
        if let Some((phase, from)) = t.open.take() {
            t.trip.push(Segment {
                task: task.clone(),
                attempt: t.attempt,
                phase,
                start_ms: from,
                end_ms: e.ts_ms.max(from),
            });
        }
        match after {
            Some(p) => {
                start_ms.get_or_insert(e.ts_ms);
                t.open = Some((p, e.ts_ms));
            }
            None => {
                if e.data.to == Some(TaskState::Failed) && !t.trip.is_empty() {
                    t.trip.push(Segment {
                        task: task.clone(),
                        attempt: t.attempt,
                        phase: Phase::Failed,
                        start_ms: e.ts_ms,
                        end_ms: e.ts_ms,
                    });
                }
                if !t.trip.is_empty() {
                    trips.push(std::mem::take(&mut t.trip));
                }
            }
        }
    }
    // Trips still under way end now.
    for (task, t) in &mut tasks {
        if let Some((phase, from)) = t.open.take() {
            t.trip.push(Segment {
                task: task.clone(),
                attempt: t.attempt,
                phase,
                start_ms: from,
                end_ms: now_ms.max(from),
            });
        }
        if !t.trip.is_empty() {
            trips.push(std::mem::take(&mut t.trip));
        }
    }
    let start_ms = start_ms.unwrap_or(now_ms);
    let end_ms = now_ms.max(start_ms);
    let lanes = pack(trips);
    let mut totals = BTreeMap::new();
    for seg in lanes.iter().flatten() {
        if seg.phase != Phase::Failed {
            *totals.entry(seg.phase).or_insert(0) += seg.end_ms - seg.start_ms;
        }
    }
    let marks = marks
        .into_iter()
        .map(|(ts_ms, task, what)| {
            let lane = lanes.iter().position(|l| {
                l.iter()
                    .any(|s| s.task == task && s.start_ms <= ts_ms && ts_ms <= s.end_ms)
            });
            Mark {
                ts_ms,
                task,
                what,
                lane,
            }
        })
        .collect();
    Timeline {
        start_ms,
        end_ms,
        lanes,
        marks,
        totals,
        failures,
        spend,
    }
}

/// Puts each trip on the first lane free when it starts.
fn pack(mut trips: Vec<Vec<Segment>>) -> Vec<Vec<Segment>> {
    trips.sort_by_key(|t| t.first().map_or(0, |s| s.start_ms));
    let mut lanes: Vec<Vec<Segment>> = Vec::new();
    for trip in trips {
        let start = trip.first().map_or(0, |s| s.start_ms);
        let end = trip.last().map_or(0, |s| s.end_ms);
        let _ = end;
        match lanes
            .iter_mut()
            .find(|l| l.last().is_none_or(|s| s.end_ms <= start))
        {
            Some(l) => l.extend(trip),
            None => lanes.push(trip),
        }
    }
    lanes
}

/// The phase shown in each of `width` columns of a lane: the phase that takes most of the
/// column's time; a failure shows in its column whatever else is there.
pub fn raster(tl: &Timeline, lane: usize, width: usize) -> Vec<Option<Phase>> {
    let mut out = vec![None; width];
    let Some(segs) = tl.lanes.get(lane) else {
        return out;
    };
    let span = (tl.end_ms - tl.start_ms).max(1) as f64;
    let col_of = |ms: u64| {
        (((ms.saturating_sub(tl.start_ms)) as f64 / span * width as f64) as usize)
            .min(width.saturating_sub(1))
    };
    let mut best = vec![0u64; width];
    for s in segs {
        let (a, b) = (col_of(s.start_ms), col_of(s.end_ms));
        for (c, slot) in out.iter_mut().enumerate().take(b + 1).skip(a) {
            if s.phase == Phase::Failed {
                *slot = Some(Phase::Failed);
                best[c] = u64::MAX;
                continue;
            }
            let c0 = tl.start_ms + (span * c as f64 / width as f64) as u64;
            let c1 = tl.start_ms + (span * (c + 1) as f64 / width as f64) as u64;
            let overlap = s.end_ms.min(c1).saturating_sub(s.start_ms.max(c0)).max(1);
            if overlap > best[c] {
                best[c] = overlap;
                *slot = Some(s.phase);
            }
        }
    }
    out
}

/// The column of a moment on a lane `width` columns wide.
pub fn column(tl: &Timeline, ms: u64, width: usize) -> usize {
    let span = (tl.end_ms - tl.start_ms).max(1) as f64;
    (((ms.saturating_sub(tl.start_ms)) as f64 / span * width as f64) as usize)
        .min(width.saturating_sub(1))
}

/// Spend per column (dollars when any cost is known, else tokens), as a sparkline.
pub fn sparkline(tl: &Timeline, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if width == 0 {
        return String::new();
    }
    let by_cost = tl.spend.iter().any(|s| s.cost_usd > 0.0);
    let mut cols = vec![0f64; width];
    for s in &tl.spend {
        cols[column(tl, s.ts_ms, width)] += if by_cost { s.cost_usd } else { s.tokens as f64 };
    }
    let max = cols.iter().copied().fold(0.0, f64::max);
    cols.iter()
        .map(|&v| {
            if v <= 0.0 || max <= 0.0 {
                ' '
            } else {
                BARS[((v / max) * 7.0).round() as usize]
            }
        })
        .collect()
}

/// 75_000 ms → "1m15s".
pub fn human_ms(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if ms > 0 && s == 0 {
        format!("{ms}ms")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests;
