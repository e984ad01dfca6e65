//! The inbox with every kind of item the read model has (insta snapshots at 80×24 and 160×48),
//! and the footer's note while human commands wait for a locked ledger.

use std::time::Duration;

use orch_tui::core::domain::*;
use orch_tui::core::state::TaskState;
use orch_tui::tui::keymap::Keymap;
use orch_tui::tui::render::render;
use orch_tui::tui::state::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn task(id: &str, state: TaskState) -> TaskInfo {
    TaskInfo {
        id: id.into(),
        title: format!("Title of {id}"),
        state,
        deps: vec![],
        agent: None,
        reason: None,
        stage: None,
        stage_until_ms: None,
    }
}

fn item(task: Option<&str>, attempt: Option<i64>, text: &str, kind: InboxKind) -> InboxItem {
    InboxItem {
        task: task.map(String::from),
        attempt: attempt.map(AttemptId),
        text: text.into(),
        kind,
    }
}

/// One item of each kind, in the read model's order.
fn every_kind() -> ViewState {
    let mut s = ViewState::new(true);
    s.help = Keymap::new(&Default::default()).0.help();
    s.plan = "every-kind".into();
    s.elapsed = Duration::from_secs(600);
    s.wall_ms = 1_000_000;
    s.tasks = [
        ("asks", TaskState::Working),
        ("idles", TaskState::Working),
        ("tools", TaskState::Working),
        ("approve", TaskState::Review),
        ("stuck", TaskState::Escalated),
        ("overran", TaskState::Failed),
        ("broke", TaskState::Failed),
        ("spends", TaskState::Working),
    ]
    .into_iter()
    .map(|(id, st)| task(id, st))
    .collect();
    let budget = |budget, used, limit| BudgetUse {
        budget,
        used,
        limit,
    };
    s.inbox = vec![
        item(
            None,
            None,
            "the integration branch moved: `orch-tui integration accept`",
            InboxKind::Held,
        ),
        item(
            Some("tools"),
            Some(3),
            "usage limit reached",
            InboxKind::Limited {
                profile: "claude".into(),
                until_ms: Some(1_900_000),
            },
        ),
        item(
            Some("tools"),
            Some(3),
            "Bash: cargo publish --dry-run",
            InboxKind::Permission {
                tool: "Bash".into(),
            },
        ),
        item(Some("asks"), Some(1), "Which port?", InboxKind::Question),
        item(
            Some("idles"),
            Some(2),
            "Step 1 is done.",
            InboxKind::IdleTurn,
        ),
        item(
            Some("approve"),
            None,
            "waits for approval",
            InboxKind::Approval(Box::new(Approval {
                stage: FunnelStage::Human,
                until_ms: None,
                n: AttemptNo(1),
                base: Some("b0".into()),
                commit: Some("c1".into()),
                diff_lines: Some(12),
                checks: vec![CheckResult {
                    command: "cargo test".into(),
                    passed: true,
                }],
                verdict: Some(Verdict::Approve),
                verdict_notes: None,
            })),
        ),
        item(
            Some("stuck"),
            None,
            "conflict in a.txt",
            InboxKind::Escalated,
        ),
        item(
            Some("overran"),
            None,
            "time budget exhausted (attempt 1 of 1)",
            InboxKind::BudgetExhausted {
                budgets: vec![budget(BudgetKind::Time, 61_000.0, 60_000.0)],
            },
        ),
        item(
            Some("broke"),
            None,
            "exit 1 (attempt 3 of 3)",
            InboxKind::Failed {
                failures: 3,
                max_attempts: 3,
            },
        ),
        item(
            Some("spends"),
            Some(4),
            "tokens 850 of 1.0k (85%)",
            InboxKind::BudgetWarning {
                budgets: vec![budget(BudgetKind::Tokens, 850.0, 1000.0)],
            },
        ),
    ];
    s.dag = orch_tui::tui::render::dag_layout(&s.tasks);
    s
}

fn snap(name: &str, s: &ViewState) {
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("backend");
        t.draw(|f| render(s, f)).expect("draw");
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
    }
}

#[test]
fn the_inbox_shows_every_kind_of_item() {
    let mut s = every_kind();
    s.view = View::Inbox;
    // The held run is selected: it has no task, so no context below the list.
    snap("inbox_every_kind", &s);
}

#[test]
fn the_footer_says_while_commands_wait_for_the_ledger() {
    let mut s = every_kind();
    s.message = Some("an older message".into());
    s.waiting = Some(
        "waiting for the ledger: retry broke, approve approve — the ledger is busy (another \
         process holds its write lock); it goes through when the ledger is free (keys still work)"
            .into(),
    );
    snap("waiting_for_the_ledger", &s);
}
