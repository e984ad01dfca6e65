//! What background answers and engine events do to the TUI's state (`App::on_job`,
//! `on_engine`), without a terminal, a ledger or threads: the waiting note, answers that came
//! too late, pages that follow the ledger, the settled run's line, diff stats asked once.

use std::collections::BTreeMap;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use orch_tui::core::domain::*;
use orch_tui::core::state::TaskState;
use orch_tui::engine::EngineEvent;
use orch_tui::read::Spend;
use orch_tui::tui::app::{App, Effect};
use orch_tui::tui::data::Refreshed;
use orch_tui::tui::input::Modes;
use orch_tui::tui::jobs::JobDone;
use orch_tui::tui::keymap::Keymap;
use orch_tui::tui::state::*;

fn ch(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn press(app: &mut App, keys: &[KeyEvent]) -> Vec<Effect> {
    keys.iter()
        .flat_map(|k| app.on_key(k, Modes::default()))
        .collect()
}

fn task(id: &str, state: TaskState) -> TaskInfo {
    TaskInfo {
        id: id.into(),
        title: id.into(),
        state,
        deps: vec![],
        agent: None,
        reason: None,
        stage: None,
        stage_until_ms: None,
    }
}

fn approval(task: &str, commit: &str) -> InboxItem {
    InboxItem {
        task: Some(task.into()),
        attempt: None,
        text: "waits for approval".into(),
        kind: InboxKind::Approval(Box::new(Approval {
            stage: FunnelStage::Human,
            until_ms: None,
            n: AttemptNo(1),
            base: Some("b0".into()),
            commit: Some(commit.into()),
            diff_lines: Some(3),
            checks: vec![],
            verdict: None,
            verdict_notes: None,
        })),
    }
}

/// A refresh as the background job delivers it: tasks `a` (done), `b` and `c` in review,
/// each waiting for approval.
fn refreshed() -> JobDone {
    let tasks = vec![
        task("a", TaskState::Done),
        task("b", TaskState::Review),
        task("c", TaskState::Review),
    ];
    JobDone::Refreshed(Box::new(Refreshed {
        plan: "p".into(),
        dag: orch_tui::tui::render::dag_layout(&tasks),
        tasks,
        inbox: vec![approval("b", "c1"), approval("c", "c2")],
        agents: vec![],
        spend: Spend::default(),
        alerts: vec![],
        done: 1,
        total: 3,
        took: Duration::from_millis(3),
    }))
}

fn app() -> App {
    let mut app = App::new(ViewState::new(false), Keymap::new(&BTreeMap::new()).0);
    app.size = (100, 30);
    app
}

#[test]
fn a_command_waiting_for_the_ledger_says_so_until_it_lands() {
    let mut a = app();
    a.sent("retry c".into());
    assert_eq!(
        a.state.waiting, None,
        "nothing to say before the ledger is found busy"
    );
    a.on_job(JobDone::Waiting {
        what: "retry c".into(),
        why: "the ledger is busy".into(),
    });
    a.sent("cancel b".into());
    let note = a.state.waiting.clone().expect("a note");
    assert!(
        note.starts_with("waiting for the ledger: retry c, cancel b — the ledger is busy"),
        "{note}"
    );
    let fx = a.on_job(JobDone::Human {
        what: "retry c".into(),
        message: "c: failed -> ready".into(),
    });
    assert_eq!(fx, vec![Effect::Refresh], "the ledger changed: read it");
    assert!(
        a.state
            .waiting
            .as_deref()
            .is_some_and(|w| w.contains("cancel b") && !w.contains("retry c"))
    );
    a.on_job(JobDone::Human {
        what: "cancel b".into(),
        message: "b: review -> cancelled".into(),
    });
    assert_eq!(a.state.waiting, None);
    assert_eq!(a.state.message.as_deref(), Some("b: review -> cancelled"));
}

#[test]
fn an_answer_for_a_page_no_longer_wanted_is_dropped() {
    let mut a = app();
    a.on_job(refreshed());
    // Detail of `a`, then of `b` before `a`'s answer came.
    assert_eq!(
        press(&mut a, &[ch('t')]),
        vec![Effect::LoadDetail { task: "a".into() }]
    );
    press(
        &mut a,
        &[
            KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE),
            ch('j'),
            ch('t'),
        ],
    );
    let detail = |task: &str, scroll| DetailInfo {
        task: task.into(),
        title: String::new(),
        state: TaskState::Done,
        prompt: String::new(),
        deps: vec![],
        note: None,
        reason: None,
        attempts: vec![],
        events: vec![],
        history: vec![],
        funnel: vec![],
        records: vec![],
        conversation: vec![],
        conversation_path: None,
        screen_tail: vec![],
        scroll,
    };
    a.on_job(JobDone::Detail {
        task: "a".into(),
        result: Ok(Some(Box::new(detail("a", 0)))),
    });
    assert!(a.state.detail.is_none(), "a's detail came too late");
    a.on_job(JobDone::Detail {
        task: "b".into(),
        result: Ok(Some(Box::new(detail("b", 0)))),
    });
    assert_eq!(a.state.detail.as_ref().map(|d| d.task.as_str()), Some("b"));
    // A refresh reloads the page on show, and the reload keeps the reader's place.
    press(&mut a, &[ch('j'), ch('j')]);
    let fx = a.on_job(refreshed());
    assert!(
        fx.contains(&Effect::LoadDetail { task: "b".into() }),
        "{fx:?}"
    );
    a.on_job(JobDone::Detail {
        task: "b".into(),
        result: Ok(Some(Box::new(detail("b", 0)))),
    });
    assert_eq!(a.state.detail.as_ref().map(|d| d.scroll), Some(2));
}

#[test]
fn a_settled_run_says_how_it_stands_until_something_moves() {
    let mut a = app();
    assert_eq!(a.on_engine(EngineEvent::Finished), vec![Effect::Refresh]);
    a.on_job(refreshed());
    assert_eq!(
        a.state.finished.as_deref(),
        Some("2 of 3 not done: see the inbox · q quits")
    );
    assert_eq!(a.on_engine(EngineEvent::Changed), vec![Effect::Refresh]);
    assert_eq!(a.state.finished, None, "it moves again");
    a.on_job(refreshed());
    assert_eq!(a.state.finished, None);
}

#[test]
fn diff_stats_of_approvals_are_asked_for_once() {
    let mut a = app();
    let stat = |commit: &str| Effect::LoadDiffStat {
        base: "b0".into(),
        commit: commit.into(),
    };
    assert_eq!(a.on_job(refreshed()), vec![stat("c1"), stat("c2")]);
    assert_eq!(a.on_job(refreshed()), vec![], "asked already");
    a.on_job(JobDone::Stat {
        range: "b0..c1".into(),
        stat: " 1 file changed, 3 insertions(+)".into(),
    });
    assert_eq!(a.on_job(refreshed()), vec![], "known now");
    assert_eq!(
        a.state.stat_cache.get("b0..c1").map(String::as_str),
        Some(" 1 file changed, 3 insertions(+)")
    );
}

#[test]
fn a_failed_refresh_keeps_the_view_and_says_why() {
    let mut a = app();
    a.on_job(refreshed());
    a.on_job(JobDone::Failed(
        "cannot read the ledger: disk I/O error".into(),
    ));
    assert_eq!(a.state.tasks.len(), 3, "the last good view stays");
    assert_eq!(
        a.state.message.as_deref(),
        Some("cannot read the ledger: disk I/O error")
    );
}

#[test]
fn quitting_with_a_command_on_its_way_asks_first() {
    let mut a = app();
    a.on_engine_ended(&Ok(orch_tui::engine::RunEnd::Unfinished));
    assert_eq!(
        press(&mut a, &[ch('q')]),
        vec![Effect::Exit],
        "the run is over"
    );

    let mut a = app();
    a.on_engine_ended(&Ok(orch_tui::engine::RunEnd::Unfinished));
    a.sent("retry c".into());
    assert_eq!(press(&mut a, &[ch('q')]), vec![]);
    assert!(a.state.quit_prompt, "a command is on its way: ask");
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).expect("tb");
    t.draw(|f| orch_tui::tui::render::render(&a.state, f))
        .expect("draw");
    let screen: String = t
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(
        screen.contains("1 command(s) not written yet: quitting drops them"),
        "{screen}"
    );
}
