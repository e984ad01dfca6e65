use super::*;

fn ev(ts_s: u64, task: &str, actor: Actor, kind: EventKind, data: EventData) -> TimelineEvent {
    TimelineEvent {
        ts_ms: ts_s * 1000,
        task: Some(task.into()),
        attempt: Some(1),
        actor,
        kind,
        data,
    }
}

fn to(ts_s: u64, task: &str, state: TaskState) -> TimelineEvent {
    ev(
        ts_s,
        task,
        Actor::Supervisor,
        EventKind::State,
        EventData {
            to: Some(state),
            ..EventData::default()
        },
    )
}

fn human(ts_s: u64, task: &str, state: TaskState, cmd: &str) -> TimelineEvent {
    ev(
        ts_s,
        task,
        Actor::Human,
        EventKind::State,
        EventData {
            to: Some(state),
            command: Some(cmd.into()),
            ..EventData::default()
        },
    )
}

fn stage(ts_s: u64, task: &str, s: FunnelStage) -> TimelineEvent {
    ev(
        ts_s,
        task,
        Actor::Supervisor,
        EventKind::Funnel,
        EventData {
            stage: Some(s),
            ..EventData::default()
        },
    )
}

fn run() -> Vec<TimelineEvent> {
    use TaskState::*;
    vec![
        to(0, "a", Assigned),
        to(1, "a", Working),
        to(2, "b", Assigned),
        to(3, "b", Working),
        ev(
            5,
            "a",
            Actor::Agent,
            EventKind::AgentQuestion,
            EventData::default(),
        ),
        ev(
            6,
            "b",
            Actor::Agent,
            EventKind::Usage,
            EventData {
                cost_usd: Some(0.5),
                tokens_in: Some(100),
                ..EventData::default()
            },
        ),
        ev(
            8,
            "a",
            Actor::Human,
            EventKind::Answered,
            EventData::default(),
        ),
        to(10, "a", Review),
        stage(10, "a", FunnelStage::Checks),
        stage(12, "a", FunnelStage::Human),
        to(15, "b", Failed),
        human(20, "a", Approved, "approve"),
        to(21, "a", Merging),
        to(22, "a", Done),
        human(30, "b", Ready, "retry"),
        to(31, "b", Assigned),
        to(32, "b", Working),
    ]
}

#[test]
fn phases_lanes_marks_and_totals_come_from_the_events() {
    let tl = build(&run(), 40_000);
    assert_eq!((tl.start_ms, tl.end_ms), (0, 40_000));
    assert_eq!(tl.lanes.len(), 2, "{:#?}", tl.lanes);
    let phases = |lane: usize| -> Vec<(String, Phase, u64, u64)> {
        tl.lanes[lane]
            .iter()
            .map(|s| (s.task.clone(), s.phase, s.start_ms / 1000, s.end_ms / 1000))
            .collect()
    };
    use Phase::*;
    // Task a's trip, then b's second trip on the lane a left free.
    assert_eq!(
        phases(0),
        vec![
            ("a".into(), Starting, 0, 1),
            ("a".into(), Working, 1, 5),
            ("a".into(), WaitingInput, 5, 8),
            ("a".into(), Working, 8, 10),
            ("a".into(), Review, 10, 12),
            ("a".into(), Human, 12, 20),
            ("a".into(), MergeQueue, 20, 22),
            ("b".into(), Starting, 31, 32),
            ("b".into(), Working, 32, 40),
        ]
    );
    assert_eq!(
        phases(1),
        vec![
            ("b".into(), Starting, 2, 3),
            ("b".into(), Working, 3, 15),
            ("b".into(), Failed, 15, 15),
        ]
    );
    assert_eq!(tl.failures, 1);
    assert_eq!(tl.totals[&WaitingInput], 3_000);
    assert_eq!(tl.totals[&Human], 8_000);
    assert_eq!(tl.totals[&MergeQueue], 2_000);
    assert_eq!(tl.waited_for_human_ms(), 11_000);
    let marks: Vec<(u64, &str, char, Option<usize>)> = tl
        .marks
        .iter()
        .map(|m| (m.ts_ms / 1000, m.what.as_str(), m.glyph(), m.lane))
        .collect();
    assert_eq!(
        marks,
        vec![
            (8, "answer", '!', Some(0)),
            (20, "approve", 'A', Some(0)),
            (30, "retry", 'R', None),
        ]
    );
    assert_eq!(tl.spend.len(), 1);
}

#[test]
fn rasters_show_each_column_by_its_main_phase_and_failures_always() {
    let tl = build(&run(), 40_000);
    let row: String = raster(&tl, 1, 40)
        .into_iter()
        .map(|p| p.map_or(' ', Phase::glyph))
        .collect();
    assert_eq!(row.trim_end(), "  ░████████████✗");
    let spark = sparkline(&tl, 40);
    assert_eq!(spark.chars().nth(6), Some('█'));
    assert_eq!(spark.trim(), "█");
}

#[test]
fn no_events_is_an_empty_timeline() {
    let tl = build(&[], 5_000);
    assert!(tl.lanes.is_empty());
    assert_eq!(tl.waited_for_human_ms(), 0);
    assert_eq!(raster(&tl, 0, 10), vec![None; 10]);
    assert_eq!(human_ms(75_000), "1m15s");
    assert_eq!(human_ms(250), "250ms");
}
