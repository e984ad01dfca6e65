//! Scheduling decisions, pure: which ready task goes to which agent profile now, retry backoff,
//! and which tasks a failure blocks. The engine applies these; nothing here touches I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// A task the scheduler may dispatch.
#[derive(Debug, Clone)]
pub struct ReadyTask {
    pub id: String,
    pub priority: i64,
    /// When it became ready (ms); drives aging.
    pub ready_since_ms: u64,
    /// Retry backoff: not before this time (ms).
    pub not_before_ms: u64,
    pub capabilities: Vec<String>,
    /// The profile the plan asks for, if any.
    pub agent: Option<String>,
}

/// An agent profile as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct ProfileLoad {
    pub name: String,
    /// Empty means "takes any task".
    pub capabilities: Vec<String>,
    pub max_concurrent: usize,
    pub running: usize,
}

/// One priority point per this many milliseconds of waiting, so low priority cannot starve.
pub const AGING_MS_PER_POINT: u64 = 30_000;

/// Where a ready task stands in the dispatch order, smallest first: its priority with the
/// waiting it has done (a point per `AGING_MS_PER_POINT`, counted continuously), then the
/// longest waiting, then the id. Waiting ages every task at the same rate, so the order does
/// not change with the clock: it can be kept as an index instead of sorting every ready
/// task at every dispatch.
pub fn dispatch_key(priority: i64, ready_since_ms: u64, id: &str) -> (i128, u64, String) {
    let aged = i128::from(ready_since_ms) - i128::from(priority) * i128::from(AGING_MS_PER_POINT);
    (aged, ready_since_ms, id.to_string())
}

fn can_take(p: &ProfileLoad, t: &ReadyTask) -> bool {
    if let Some(a) = &t.agent
        && a != &p.name
    {
        return false;
    }
    p.capabilities.is_empty() || t.capabilities.iter().all(|c| p.capabilities.contains(c))
}

/// What the scheduler decided for this moment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// (task, profile) pairs to start now, best first.
    pub dispatch: Vec<(String, String)>,
    /// Tasks no configured profile can ever take (wrong agent name or capabilities).
    pub unroutable: Vec<String>,
    /// The earliest backoff expiry among waiting tasks, so the engine can set one timer.
    pub wake_at_ms: Option<u64>,
}

/// No configured profile can ever take it (wrong agent name or capabilities).
pub fn unroutable(t: &ReadyTask, profiles: &[ProfileLoad]) -> bool {
    !profiles.iter().any(|p| can_take(p, t))
}

/// Fill `free_slots` from `ready`, best effective priority first (`dispatch_key`), respecting
/// each profile's `max_concurrent` and capabilities. A task that cannot run now does not block
/// the ones after it.
pub fn decide(
    ready: &[ReadyTask],
    profiles: &[ProfileLoad],
    free_slots: usize,
    now_ms: u64,
) -> Decision {
    let mut order: Vec<&ReadyTask> = ready.iter().collect();
    order.sort_by_cached_key(|t| dispatch_key(t.priority, t.ready_since_ms, &t.id));
    fill(
        order.into_iter().cloned(),
        profiles,
        free_slots,
        now_ms,
        false,
    )
}

/// `decide` for tasks already in dispatch order, looking at no more of them than it takes to
/// fill the slots (`unroutable` and `wake_at_ms` then cover only the tasks looked at).
pub fn decide_in_order(
    ordered: impl Iterator<Item = ReadyTask>,
    profiles: &[ProfileLoad],
    free_slots: usize,
    now_ms: u64,
) -> Decision {
    fill(ordered, profiles, free_slots, now_ms, true)
}

fn fill(
    order: impl Iterator<Item = ReadyTask>,
    profiles: &[ProfileLoad],
    free_slots: usize,
    now_ms: u64,
    stop_when_full: bool,
) -> Decision {
    let mut out = Decision::default();
    let mut load: Vec<ProfileLoad> = profiles.to_vec();
    let mut slots = free_slots;
    for t in order {
        if stop_when_full && (slots == 0 || load.iter().all(|p| p.running >= p.max_concurrent)) {
            break;
        }
        if unroutable(&t, profiles) {
            out.unroutable.push(t.id.clone());
            continue;
        }
        if t.not_before_ms > now_ms {
            out.wake_at_ms = Some(
                out.wake_at_ms
                    .map_or(t.not_before_ms, |w| w.min(t.not_before_ms)),
            );
            continue;
        }
        if slots == 0 {
            continue;
        }
        // Least-loaded capable profile, so work spreads across agent kinds.
        let pick = load
            .iter_mut()
            .filter(|p| p.running < p.max_concurrent && can_take(p, &t))
            .min_by_key(|p| (p.running, p.name.clone()));
        if let Some(p) = pick {
            p.running += 1;
            slots -= 1;
            out.dispatch.push((t.id.clone(), p.name.clone()));
        }
    }
    out
}

/// Full-jitter exponential backoff: a delay uniform in `[0, min(cap, base * 2^(n-1))]` for the
/// n-th failure (n >= 1). `random` is any uniformly distributed u64 (the caller owns randomness).
pub fn backoff_ms(failures: u32, base_ms: u64, cap_ms: u64, random: u64) -> u64 {
    let shift = failures.saturating_sub(1).min(40);
    let ceiling = base_ms.saturating_mul(1u64 << shift).min(cap_ms);
    if ceiling == 0 {
        return 0;
    }
    random % (ceiling + 1)
}

/// Every task that depends on `root`, directly or not (not including `root`).
/// `deps` maps a task to the tasks it depends on.
pub fn descendants(root: &str, deps: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (task, ds) in deps {
        for d in ds {
            dependents
                .entry(d.as_str())
                .or_default()
                .push(task.as_str());
        }
    }
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([root]);
    while let Some(n) = queue.pop_front() {
        for &c in dependents.get(n).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(c.to_string()) {
                queue.push_back(c);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn task(id: &str, prio: i64, since: u64) -> ReadyTask {
        ReadyTask {
            id: id.into(),
            priority: prio,
            ready_since_ms: since,
            not_before_ms: 0,
            capabilities: vec![],
            agent: None,
        }
    }

    fn profile(name: &str, caps: &[&str], max: usize) -> ProfileLoad {
        ProfileLoad {
            name: name.into(),
            capabilities: caps.iter().map(|s| s.to_string()).collect(),
            max_concurrent: max,
            running: 0,
        }
    }

    #[test]
    fn higher_priority_first_and_slots_respected() {
        let ready = [task("low", 1, 0), task("high", 9, 0), task("mid", 5, 0)];
        let d = decide(&ready, &[profile("sim", &[], 4)], 2, 0);
        let ids: Vec<_> = d.dispatch.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(ids, ["high", "mid"]);
    }

    #[test]
    fn aging_lets_old_low_priority_work_through() {
        // Waited 10 minutes: 20 points of aging beat a fresh priority-9 task.
        let ready = [task("old-low", 0, 0), task("fresh-high", 9, 600_000)];
        let d = decide(&ready, &[profile("sim", &[], 1)], 1, 600_000);
        assert_eq!(d.dispatch[0].0, "old-low");
    }

    #[test]
    fn max_concurrent_and_capabilities_route() {
        let mut t1 = task("docs", 5, 0);
        t1.capabilities = vec!["docs".into()];
        let mut t2 = task("rust", 5, 1);
        t2.capabilities = vec!["rust".into()];
        let t3 = task("any", 5, 2);
        let mut busy = profile("writer", &["docs"], 1);
        busy.running = 1;
        let d = decide(&[t1, t2, t3], &[busy, profile("coder", &["rust"], 2)], 4, 0);
        // docs waits for its busy profile; rust and any go to coder.
        assert_eq!(
            d.dispatch,
            vec![
                ("rust".into(), "coder".into()),
                ("any".into(), "coder".into())
            ]
        );
        assert!(d.unroutable.is_empty());
    }

    #[test]
    fn unknown_capability_is_unroutable_not_silently_waiting() {
        let mut t = task("gpu", 1, 0);
        t.capabilities = vec!["cuda".into()];
        let d = decide(&[t], &[profile("coder", &["rust"], 2)], 4, 0);
        assert_eq!(d.unroutable, vec!["gpu".to_string()]);
        assert!(d.dispatch.is_empty());
    }

    #[test]
    fn backoff_waits_and_reports_wake_time() {
        let mut t = task("retry", 1, 0);
        t.not_before_ms = 5_000;
        let d = decide(&[t, task("go", 0, 0)], &[profile("sim", &[], 4)], 4, 1_000);
        assert_eq!(d.dispatch, vec![("go".into(), "sim".into())]);
        assert_eq!(d.wake_at_ms, Some(5_000));
    }

    #[test]
    fn descendants_follow_the_graph() {
        let deps: BTreeMap<String, Vec<String>> = [
            ("b", vec!["a"]),
            ("c", vec!["b"]),
            ("d", vec!["a", "x"]),
            ("x", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        let got: Vec<_> = descendants("a", &deps).into_iter().collect();
        assert_eq!(got, ["b", "c", "d"]);
        assert!(descendants("c", &deps).is_empty());
    }

    proptest! {
        #[test]
        fn backoff_stays_inside_its_envelope(n in 1u32..60, base in 1u64..10_000, cap in 1u64..1_000_000, r: u64) {
            let d = backoff_ms(n, base, cap, r);
            let ceiling = base.saturating_mul(1u64 << (n - 1).min(40)).min(cap);
            prop_assert!(d <= ceiling);
        }

        #[test]
        fn never_more_dispatches_than_slots_or_limits(
            prios in proptest::collection::vec(-5i64..5, 0..30),
            slots in 0usize..8,
            max_a in 0usize..4,
            max_b in 0usize..4,
        ) {
            let ready: Vec<_> = prios.iter().enumerate().map(|(i, p)| task(&format!("t{i}"), *p, i as u64)).collect();
            let d = decide(&ready, &[profile("a", &[], max_a), profile("b", &[], max_b)], slots, 0);
            prop_assert!(d.dispatch.len() <= slots);
            prop_assert!(d.dispatch.iter().filter(|(_, p)| p == "a").count() <= max_a);
            prop_assert!(d.dispatch.iter().filter(|(_, p)| p == "b").count() <= max_b);
            prop_assert_eq!(d.dispatch.len(), slots.min(max_a + max_b).min(ready.len()));
            // Dispatched in non-increasing priority order.
            let ps: Vec<i64> = d.dispatch.iter().map(|(t, _)| ready.iter().find(|r| &r.id == t).map(|r| r.priority).unwrap_or(0)).collect();
            prop_assert!(ps.windows(2).all(|w| w[0] >= w[1]));
        }
    }
}
