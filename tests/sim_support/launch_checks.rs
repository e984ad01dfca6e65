//! Checks made as a fake agent is launched: it resumes the conversation it should, and it starts
//! on a base that holds its dependencies' work.

use orch_tui::engine::world::Launch;

use super::world::*;

/// An agent attempt that continues an earlier one of its profile in the same worktree (a
/// session ended at a pause, a limit lifted, a failure retried) resumes that one's
/// conversation when it had one: its argv names the session.
pub(super) fn resumes_its_conversation(w: &mut World, task: &str, l: &Launch) {
    let rows = w.ledger.attempts(task).unwrap_or_default();
    let Some(prev) = rows
        .iter()
        .find(|a| a.id == l.attempt)
        .and_then(|a| a.continues)
        .and_then(|p| rows.iter().find(|a| a.id == p))
    else {
        return;
    };
    let Some(session) = prev.session.as_deref() else {
        return;
    };
    let resumes = l.argv.iter().any(|a| a == session);
    let can = l.profile.adapter == orch_tui::core::config::Adapter::Codex;
    if can && prev.profile == l.profile.name && !resumes {
        let v = format!(
            "{task} attempt {} continues attempt {} but does not resume its session {session}: {:?}",
            l.attempt, prev.id, l.argv
        );
        w.violations.push(v);
    }
}

/// A task starts only on a base that holds the work of all its dependencies: the merged ones,
/// and a dependency not merged yet only when the attempt names it as its candidate (started
/// during its veto window, `spec_on`) and the base holds that candidate's work.
pub(super) fn base_holds_dependencies(
    w: &mut World,
    task: &str,
    attempt: orch_tui::core::domain::AttemptId,
    worktree: &str,
) {
    let Ok(Some(t)) = w.ledger.task(task) else {
        return;
    };
    let repo = w.git.lock();
    let Some(head) = repo.worktrees.get(worktree).map(|wt| wt.head.clone()) else {
        return;
    };
    let history = repo.ancestors(&head);
    let landed: std::collections::BTreeSet<String> = history
        .iter()
        .filter_map(|c| repo.commits.get(c).and_then(|c| c.origin.clone()))
        .map(|(t, _)| t)
        .collect();
    drop(repo);
    let rows = w.ledger.attempts(task).unwrap_or_default();
    let spec_on = rows
        .iter()
        .find(|a| a.id == attempt)
        .and_then(|a| a.spec_on.clone());
    for d in &t.depends_on {
        let done = matches!(w.ledger.task(d), Ok(Some(u)) if u.state == orch_tui::core::state::TaskState::Done);
        if !done {
            let work = w
                .ledger
                .attempts(d)
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a.role == orch_tui::core::domain::Role::Agent)
                .max_by_key(|a| a.n)
                .is_some_and(|a| a.commit_oid.is_some() && a.commit_oid != a.base);
            // The candidate stands on merged work only (one level deep).
            let unmerged_below = match w.ledger.task(d) {
                Ok(Some(c)) => c
                    .depends_on
                    .iter()
                    .find(|x| {
                        !matches!(w.ledger.task(x), Ok(Some(u))
                        if u.state == orch_tui::core::state::TaskState::Done)
                    })
                    .cloned(),
                _ => None,
            };
            let v = if spec_on.as_deref() != Some(d.as_str()) {
                Some(format!(
                    "{task} started before its dependency {d} merged, naming no candidate \
                     ({spec_on:?})"
                ))
            } else if let Some(x) = unmerged_below {
                Some(format!(
                    "{task} started on the candidate tip of {d}, whose own dependency {x} is \
                     not merged"
                ))
            } else if work && !landed.contains(d) {
                Some(format!(
                    "{task} started on the candidate tip of {d} without {d}'s work"
                ))
            } else {
                None
            };
            w.violations.extend(v);
            continue;
        }
        let had_work = w
            .ledger
            .attempts(d)
            .unwrap_or_default()
            .iter()
            .any(|a| a.merge_tip.is_some());
        if had_work && !landed.contains(d) {
            let v = format!("{task} started on a base without the work of its dependency {d}");
            w.violations.push(v);
        }
    }
}
