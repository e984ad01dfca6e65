//! The timeline view as insta snapshots at 80×24 and 160×48: a run of four tasks over ten
//! minutes with a question answered, an approval, a failure retried and spend.

use orch_tui::core::domain::{Actor, EventKind, FunnelStage};
use orch_tui::core::ops::EventData;
use orch_tui::core::state::TaskState;
use orch_tui::core::timeline::{Phase, TimelineEvent, build};
use orch_tui::tui::render::render;
use orch_tui::tui::state::{View, ViewState};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const T0: u64 = 1_700_000_000_000;

fn ev(s: u64, task: &str, actor: Actor, kind: EventKind, data: EventData) -> TimelineEvent {
    TimelineEvent {
        ts_ms: T0 + s * 1000,
        task: Some(task.into()),
        attempt: Some(1),
        actor,
        kind,
        data,
    }
}

fn to(s: u64, task: &str, state: TaskState) -> TimelineEvent {
    let data = EventData {
        to: Some(state),
        ..EventData::default()
    };
    ev(s, task, Actor::Supervisor, EventKind::State, data)
}

fn events() -> Vec<TimelineEvent> {
    use TaskState::*;
    let human = |s, task: &str, state, cmd: &str| {
        let data = EventData {
            to: Some(state),
            command: Some(cmd.into()),
            ..EventData::default()
        };
        ev(s, task, Actor::Human, EventKind::State, data)
    };
    let stage = |s, task: &str, st| {
        let data = EventData {
            stage: Some(st),
            ..EventData::default()
        };
        ev(s, task, Actor::Supervisor, EventKind::Funnel, data)
    };
    let usage = |s, task: &str, usd| {
        let data = EventData {
            cost_usd: Some(usd),
            tokens_in: Some(1000),
            ..EventData::default()
        };
        ev(s, task, Actor::Agent, EventKind::Usage, data)
    };
    let mut v = vec![
        to(0, "tokenizer", Assigned),
        to(4, "tokenizer", Working),
        to(2, "counter", Assigned),
        to(6, "counter", Working),
        to(3, "cli-args", Assigned),
        to(8, "cli-args", Working),
        usage(60, "tokenizer", 0.12),
        usage(90, "counter", 0.30),
        ev(
            120,
            "cli-args",
            Actor::Agent,
            EventKind::AgentQuestion,
            EventData::default(),
        ),
        usage(150, "tokenizer", 0.05),
        to(200, "tokenizer", Review),
        stage(200, "tokenizer", FunnelStage::Checks),
        stage(230, "tokenizer", FunnelStage::Human),
        ev(
            260,
            "cli-args",
            Actor::Human,
            EventKind::Answered,
            EventData::default(),
        ),
        to(280, "counter", Failed),
        human(330, "tokenizer", Approved, "approve"),
        to(335, "tokenizer", Merging),
        to(345, "tokenizer", Done),
        to(350, "usage-docs", Assigned),
        to(353, "usage-docs", Working),
        usage(400, "usage-docs", 0.40),
        human(420, "counter", Ready, "retry"),
        to(425, "counter", Assigned),
        to(428, "counter", Working),
        to(480, "cli-args", Review),
        stage(480, "cli-args", FunnelStage::Reviewer),
        usage(500, "counter", 0.22),
    ];
    v.sort_by_key(|e| e.ts_ms);
    v
}

fn state() -> ViewState {
    let mut s = ViewState::new(true);
    s.plan = "wordstat-demo".into();
    s.view = View::Timeline;
    s.timeline = Some(build(&events(), T0 + 600_000));
    s
}

#[test]
fn timeline_snapshots() {
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("backend");
        t.draw(|f| render(&state(), f)).expect("draw");
        insta::assert_snapshot!(format!("timeline_{w}x{h}"), t.backend());
    }
}

#[test]
fn bars_are_coloured_by_phase() {
    let mut t = Terminal::new(TestBackend::new(160, 48)).expect("backend");
    t.draw(|f| render(&state(), f)).expect("draw");
    let buf = t.backend().buffer();
    let colour_of = |glyph: char| {
        buf.content()
            .iter()
            .find(|c| c.symbol() == glyph.to_string())
            .map(|c| c.fg)
    };
    use ratatui::style::Color;
    assert_eq!(colour_of(Phase::Working.glyph()), Some(Color::Green));
    assert_eq!(colour_of(Phase::Human.glyph()), Some(Color::Magenta));
    assert_eq!(colour_of(Phase::Failed.glyph()), Some(Color::Red));
}

#[test]
fn an_empty_run_says_so() {
    let mut s = state();
    s.timeline = Some(build(&[], T0));
    let mut t = Terminal::new(TestBackend::new(80, 24)).expect("backend");
    t.draw(|f| render(&s, f)).expect("draw");
    let text: String = t
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(text.contains("no agent has started yet"));
}
