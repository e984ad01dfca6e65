//! Snapshot tests of every TUI screen, rendered from a ViewState fixture on a TestBackend at
//! 80×24 and 160×48 (and a too-small terminal).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orch_tui::agent::screen::new_parser;
use orch_tui::core::domain::*;
use orch_tui::core::state::TaskState;
use orch_tui::tui::keymap::Keymap;
use orch_tui::tui::render::render;
use orch_tui::tui::state::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn task(id: &str, state: TaskState, deps: &[&str], agent: Option<&str>) -> TaskInfo {
    TaskInfo {
        id: id.into(),
        title: format!("Title of {id}"),
        state,
        deps: deps.iter().map(|d| d.to_string()).collect(),
        agent: agent.map(String::from),
        reason: None,
        stage: None,
        stage_until_ms: None,
    }
}

fn agent(attempt: i64, task: &str, n: u32, bytes: &[u8], elapsed: u64) -> AgentInfo {
    let mut p = new_parser(20, 70);
    p.process(bytes);
    AgentInfo {
        attempt: AttemptId(attempt),
        task: task.into(),
        n: AttemptNo(n),
        profile: "sim".into(),
        substatus: Substatus::Busy,
        question: None,
        elapsed: Duration::from_secs(elapsed),
        time_budget: Some(Duration::from_secs(120)),
        started: Instant::now(),
        held_since: None,
        tokens: 1000 * attempt,
        cost_usd: 0.01 * attempt as f64,
        budget_tokens: Some(5000),
        budget_cost_usd: Some(0.05),
        screen: Some(Arc::new(Mutex::new(p))),
    }
}

fn fixture() -> ViewState {
    let mut s = ViewState::new(true);
    s.help = Keymap::new(&Default::default()).0.help();
    s.plan = "wordstat-demo".into();
    s.elapsed = Duration::from_secs(83);
    s.spend_tokens = 12_600;
    s.spend_usd = 0.1;
    s.tasks = vec![
        task("scaffold", TaskState::Done, &[], None),
        task("tokenizer", TaskState::Working, &["scaffold"], Some("sim")),
        task("counter", TaskState::Working, &["scaffold"], Some("sim")),
        task("cli-args", TaskState::Working, &["scaffold"], Some("sim")),
        task("usage-docs", TaskState::Working, &["scaffold"], Some("sim")),
        task("tokenizer-tests", TaskState::Pending, &["tokenizer"], None),
        task(
            "integrate",
            TaskState::Pending,
            &["tokenizer", "counter", "cli-args"],
            None,
        ),
        task("changelog", TaskState::Escalated, &["integrate"], None),
        task(
            "release",
            TaskState::Failed,
            &["integrate", "changelog"],
            None,
        ),
    ];
    s.tasks[7].reason = Some("agent changed nothing".into());
    s.tasks[8].reason = Some("3 attempts failed".into());
    s.agents = vec![
        agent(
            1,
            "tokenizer",
            1,
            b"\x1b[1;36m\xe2\x97\x86 sim\x1b[0m tokenizer #1\r\n\x1b[32m[##--]\x1b[0m step 2/4\r\n",
            30,
        ),
        agent(
            2,
            "counter",
            1,
            b"\x1b[1;35mcounter\x1b[0m at work\r\n\x1b[41;37m warn \x1b[0m slow disk\r\n",
            95,
        ),
        agent(
            3,
            "cli-args",
            2,
            b"writing wordstat/args.py\r\n\x1b[1mdone soon\x1b[0m",
            112,
        ),
        agent(
            4,
            "usage-docs",
            1,
            b"\x1b[33mWhich format?\x1b[0m\r\n> ",
            10,
        ),
    ];
    s.agents[3].substatus = Substatus::WaitingInput;
    s.agents[3].question = Some("question: Which format?".into());
    s.inbox = vec![
        InboxItem {
            task: Some("usage-docs".into()),
            kind: InboxKind::Question,
            text: "question: Which format?".into(),
            attempt: Some(AttemptId(4)),
        },
        InboxItem {
            task: Some("changelog".into()),
            kind: InboxKind::Escalated,
            text: "agent changed nothing".into(),
            attempt: None,
        },
        InboxItem {
            task: Some("release".into()),
            kind: InboxKind::Failed {
                failures: 3,
                max_attempts: 3,
            },
            text: "3 attempts failed".into(),
            attempt: None,
        },
    ];
    s.selected_task = 1;
    s.dag = orch_tui::tui::render::dag_layout(&s.tasks);
    s.logs.lines = (0..40)
        .map(|i| {
            let (task, n) = [("tokenizer", 1), ("counter", 1), ("cli-args", 2)][i % 3];
            let mut l = LogLine::output(
                task,
                n,
                &format!(
                    "line {i}: {}",
                    if i % 7 == 0 { "error: boom" } else { "working" }
                ),
            );
            l.ms = 1_700_000_000_000 + i as u64 * 1000;
            l.clock = format!("12:00:{:02}", i);
            // The counter's checks and a reviewer, tagged as such.
            if i % 10 == 4 {
                l.source = orch_tui::agent::record::tail::SourceKind::Checks;
                l.tag = format!("{task}#{n} checks");
            }
            if i % 10 == 8 {
                l.source = orch_tui::agent::record::tail::SourceKind::Reviewer;
                l.tag = format!("{task}#{n} review");
            }
            if i == 38 {
                l.kind = orch_tui::agent::record::text::LineKind::Screen;
            }
            l
        })
        .collect();
    s.detail = Some(DetailInfo {
        task: "release".into(),
        title: "Cut the release".into(),
        state: TaskState::Failed,
        prompt: "Tag v0.1.0 and write the notes.\n@sim fail".into(),
        deps: vec!["integrate".into(), "changelog".into()],
        note: Some("try a smaller change".into()),
        reason: Some("3 attempts failed".into()),
        attempts: vec![AttemptInfo {
            n: AttemptNo(1),
            profile: "sim".into(),
            state: AttemptState::Failed,
            outcome: "exit 1".into(),
            duration: Some(Duration::from_secs(4)),
        }],
        events: vec!["#12 supervisor task_state {\"from\":\"ready\",\"to\":\"assigned\"}".into()],
        history: vec![
            "14:02:11  orch     ready → assigned".into(),
            "14:02:12  agent#1  attempt #1 started (sim)".into(),
            "14:05:40  you      retry: failed → ready · note: use the builder".into(),
        ],
        funnel: vec![
            "#1 stage checks".into(),
            "#1 ✓ check `cargo test`".into(),
            "#1 stage reviewer".into(),
            "#1 reviewer: changes — handle the empty tag".into(),
        ],
        records: vec![
            "#1 claude  .orch/logs/release/1  replay: orch-tui replay release --attempt 1".into(),
            "   transcript: /home/u/.claude/projects/-repo/e9b5.jsonl".into(),
        ],
        // A real Claude Code transcript (tests/fixtures/transcripts), as the detail shows it.
        conversation: orch_tui::agent::record::transcript::render(
            &orch_tui::agent::record::transcript::read(std::path::Path::new(
                "tests/fixtures/transcripts/claude-2.1.328.jsonl",
            ))
            .unwrap(),
        ),
        conversation_path: Some("/home/u/.claude/projects/-repo/e9b5.jsonl".into()),
        screen_tail: vec![
            "12:00:01 ◆ sim-agent task release attempt 1".into(),
            "12:00:04 ✔ step 1/3".into(),
            "12:00:05 ── agent exited with code 1 ──".into(),
        ],
        scroll: 0,
    });
    s
}

fn draw(s: &ViewState, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("backend");
    t.draw(|f| render(s, f)).expect("draw");
    t
}

fn snap(name: &str, s: &ViewState) {
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let t = draw(s, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
    }
}

fn with_view(v: View) -> ViewState {
    let mut s = fixture();
    s.view = v;
    s
}

#[test]
fn dashboard_with_four_agents() {
    snap("dashboard", &fixture());
}

#[test]
fn dashboard_colours_reach_the_buffer() {
    let t = draw(&fixture(), 160, 48);
    let buf = t.backend().buffer();
    // Done task glyph is green, the agent's bold cyan banner keeps its colour.
    let styles: Vec<String> = (0..48)
        .flat_map(|y| (0..160).map(move |x| (x, y)))
        .filter_map(|(x, y)| buf.cell((x, y)))
        .filter(|c| c.symbol() == "◆" || c.symbol() == "✓")
        .map(|c| format!("{} {:?}", c.symbol(), c.fg))
        .collect();
    assert!(styles.contains(&"✓ Green".to_string()), "{styles:?}");
    assert!(styles.contains(&"◆ Indexed(6)".to_string()), "{styles:?}");
}

#[test]
fn no_color_draws_no_colours() {
    let mut s = fixture();
    s.color = false;
    let t = draw(&s, 160, 48);
    let buf = t.backend().buffer();
    for c in buf.content() {
        assert_eq!(c.fg, ratatui::style::Color::Reset, "{c:?}");
        assert_eq!(c.bg, ratatui::style::Color::Reset, "{c:?}");
    }
}

#[test]
fn focus() {
    let mut s = with_view(View::Focus);
    s.focus = Some(AttemptId(2));
    snap("focus", &s);
}

#[test]
fn focus_keeps_an_ended_agents_last_screen() {
    let mut s = with_view(View::Focus);
    s.focus = Some(AttemptId(2));
    let i = s
        .agents
        .iter()
        .position(|a| a.attempt == AttemptId(2))
        .unwrap();
    let ended = s.agents.remove(i);
    s.ended.push(ended);
    let t = draw(&s, 80, 24);
    let text: String = t
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(text.contains("counter#1"), "{text}");
    assert!(text.contains("has ended: its last screen"), "{text}");
    assert!(text.contains("slow disk"), "the last frame stays: {text}");
}

#[test]
fn logs() {
    let mut s = with_view(View::Logs);
    snap("logs_follow", &s);
    s.logs.follow = false;
    s.logs.scroll = 10;
    s.logs.set_search(Some("err(or)?".into()));
    s.logs.filter = Some("counter".into());
    snap("logs_filtered_search", &s);
}

#[test]
fn inbox() {
    let mut s = with_view(View::Inbox);
    s.selected_inbox = 1;
    snap("inbox", &s);
}

/// The fixture plus two tasks in review waiting for the human (one in a veto window, 1m12s
/// left), their approval items first in the inbox, and a diff.
fn funnel_fixture() -> ViewState {
    let mut s = fixture();
    s.wall_ms = 1_000_000;
    let mut a = task("parser", TaskState::Review, &["scaffold"], None);
    a.stage = Some(FunnelStage::Human);
    let mut b = task("lexer", TaskState::Review, &[], None);
    b.stage = Some(FunnelStage::Veto);
    b.stage_until_ms = Some(1_072_000);
    let mut c = task("stats", TaskState::Review, &[], Some("reviewer"));
    c.stage = Some(FunnelStage::Reviewer);
    s.tasks.splice(1..1, [a, b, c]);
    s.dag = orch_tui::tui::render::dag_layout(&s.tasks);
    let approval = |stage: &str, until: Option<u64>, verdict: Option<&str>| {
        InboxKind::Approval(Box::new(Approval {
            stage: FunnelStage::parse(stage).unwrap(),
            until_ms: until,
            n: AttemptNo(2),
            base: Some(format!("base-{stage}")),
            commit: Some(format!("tip-{stage}")),
            diff_lines: Some(52),
            checks: vec![
                CheckResult {
                    command: "cargo build".into(),
                    passed: true,
                },
                CheckResult {
                    command: "cargo test --all".into(),
                    passed: true,
                },
            ],
            verdict: verdict.and_then(Verdict::parse),
            verdict_notes: verdict.map(|_| "clean, handles the empty input".into()),
        }))
    };
    // What the background job fetched with `git diff --stat` (the veto's is still loading).
    s.stat_cache.insert(
        "base-human..tip-human".into(),
        " src/parser.rs       | 40 ++++++++++++++++++++++++++++------\n \
         tests/parser_test.rs | 12 ++++++++++++\n \
         2 files changed, 46 insertions(+), 6 deletions(-)"
            .into(),
    );
    s.inbox.splice(
        0..0,
        [
            InboxItem {
                task: Some("parser".into()),
                kind: approval("human", None, Some("approve")),
                text: String::new(),
                attempt: None,
            },
            InboxItem {
                task: Some("lexer".into()),
                kind: approval("veto", Some(1_072_000), None),
                text: String::new(),
                attempt: None,
            },
        ],
    );
    s.diff = Some(DiffState {
        task: "parser".into(),
        range: "#2 1a2b3c4d..5e6f7a8b".into(),
        lines: [
            "diff --git a/src/parser.rs b/src/parser.rs",
            "index 1a2b3c4..5e6f7a8 100644",
            "--- a/src/parser.rs",
            "+++ b/src/parser.rs",
            "@@ -1,5 +1,7 @@ fn parse(input: &str)",
            " use std::str::Chars;",
            "-fn parse(input: &str) -> Vec<Token> {",
            "+pub fn parse(input: &str) -> Result<Vec<Token>, Error> {",
            "+    if input.is_empty() {",
            "+        return Ok(Vec::new());",
            "+    }",
            "     let mut out = Vec::new();",
        ]
        .iter()
        .map(|l| l.to_string())
        .collect(),
        scroll: 0,
    });
    s
}

#[test]
fn inbox_with_approvals() {
    let mut s = funnel_fixture();
    s.view = View::Inbox;
    snap("inbox_approval", &s);
    s.selected_inbox = 1;
    snap("inbox_veto", &s);
}

#[test]
fn dashboard_shows_funnel_stages() {
    snap("dashboard_funnel", &funnel_fixture());
}

#[test]
fn diff_view() {
    let mut s = funnel_fixture();
    s.view = View::Diff;
    snap("diff", &s);
    s.diff.as_mut().expect("diff").scroll = 4;
    snap("diff_scrolled", &s);
}

#[test]
fn diff_colours() {
    let mut s = funnel_fixture();
    s.view = View::Diff;
    let t = draw(&s, 80, 24);
    let buf = t.backend().buffer();
    let row = |y: u16| -> (String, ratatui::style::Color, ratatui::style::Modifier) {
        let c = buf.cell((1, y)).expect("cell");
        (c.symbol().to_string(), c.fg, c.modifier)
    };
    // Body starts at row 2 (header, border); the lines are in fixture order.
    assert!(
        row(2).2.contains(ratatui::style::Modifier::BOLD),
        "file header"
    );
    assert_eq!(row(6).1, ratatui::style::Color::Cyan, "hunk header");
    assert_eq!(row(8).1, ratatui::style::Color::Red, "removed");
    assert_eq!(row(9).1, ratatui::style::Color::Green, "added");
    assert_eq!(row(7).1, ratatui::style::Color::Reset, "context");
}

#[test]
fn reject_note_input() {
    let mut s = funnel_fixture();
    s.view = View::Inbox;
    s.input = Some(InputState {
        purpose: InputPurpose::RejectNote {
            task: "parser".into(),
        },
        text: "split the lexer out".into(),
    });
    snap("reject_input", &s);
}

#[test]
fn retry_note_input() {
    let mut s = with_view(View::Inbox);
    s.input = Some(InputState {
        purpose: InputPurpose::RetryNote {
            task: "release".into(),
        },
        text: "use semver".into(),
    });
    snap("retry_input", &s);
}

#[test]
fn task_detail() {
    snap("detail", &with_view(View::Detail));
}

#[test]
fn dag() {
    snap("dag", &with_view(View::Dag));
}

#[test]
fn help() {
    snap("help", &with_view(View::Help));
}

#[test]
fn quit_prompt() {
    let mut s = fixture();
    s.quit_prompt = true;
    snap("quit_prompt", &s);
}

#[test]
fn empty_plan() {
    let mut s = ViewState::new(true);
    s.help = Keymap::new(&Default::default()).0.help();
    s.loaded = true;
    snap("empty_plan", &s);
    // Before the first refresh has come back, an empty list is not an empty plan.
    s.loaded = false;
    let t = draw(&s, 80, 24);
    let screen: String = t
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(screen.contains("reading the ledger…"), "{screen}");
}

#[test]
fn error_state() {
    let mut s = fixture();
    s.agents.clear();
    s.error = Some("cannot open the ledger: disk I/O error".into());
    s.finished = Some("supervisor failed · q quits".into());
    snap("error", &s);
}

#[test]
fn terminal_too_small() {
    for (w, h) in [(39u16, 24u16), (80, 9), (10, 3), (1, 1)] {
        let t = draw(&fixture(), w, h);
        insta::assert_snapshot!(format!("too_small_{w}x{h}"), t.backend());
    }
}

#[test]
fn small_but_usable_sizes_never_panic() {
    let views = [
        View::Dashboard,
        View::Focus,
        View::Logs,
        View::Inbox,
        View::Detail,
        View::Dag,
        View::Help,
        View::Diff,
    ];
    for v in views {
        let mut s = funnel_fixture();
        s.view = v;
        s.focus = Some(AttemptId(1));
        s.quit_prompt = true;
        for w in 40..=60 {
            for h in 10..=14 {
                draw(&s, w, h);
            }
        }
    }
}

#[test]
fn synchronized_output_holds_the_pane_until_its_end_or_timeout() {
    use orch_tui::agent::screen::SYNC_OUTPUT_TIMEOUT;
    use orch_tui::tui::render::term::is_locked;
    let mut p = new_parser(5, 20);
    p.process(b"\x1b[?2026hhalf a fra");
    let sc = Arc::new(Mutex::new(p));
    assert!(is_locked(&sc, Instant::now()));
    assert!(!is_locked(
        &sc,
        Instant::now() + SYNC_OUTPUT_TIMEOUT + Duration::from_millis(5)
    ));
    sc.lock().expect("lock").process(b"me\x1b[?2026l");
    assert!(!is_locked(&sc, Instant::now()));
}

#[test]
fn task_detail_raw_events() {
    let mut s = with_view(View::Detail);
    s.detail_raw = true;
    snap("detail_raw", &s);
}

/// A TUI that watches another supervisor says so in the header, and its quit question offers
/// only leaving the run to that supervisor (it has no agents to stop).
#[test]
fn watching_says_who_supervises_and_quit_leaves_it_running() {
    let mut s = fixture();
    s.watching = Some(4242);
    s.quit_prompt = true;
    let t = draw(&s, 160, 48);
    let text: String = t
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(text.contains("watching (supervised by pid 4242)"), "{text}");
    assert!(text.contains("keys go to its agents' holders"), "{text}");
    assert!(
        text.contains("leave it running (pid 4242 supervises it)"),
        "{text}"
    );
    assert!(!text.contains("stop the agents cleanly"), "{text}");
    s.watching = None;
    let text: String = draw(&s, 160, 48)
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(!text.contains("watching"), "{text}");
    assert!(text.contains("stop the agents cleanly"), "{text}");
}
