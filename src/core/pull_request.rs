//! The text of the pull request that finishes a run (`orch-tui pr`): its title, and a body that
//! says what each merged task did and how it got through the funnel — checks, reviews, who
//! approved, what it cost, its commits. Pure: the facts come in, markdown goes out.

/// One merged task, as the pull request tells it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergedTask {
    pub id: String,
    pub title: String,
    /// Each check of the merged attempt: its command and whether it passed (the last run).
    pub checks: Vec<(String, bool)>,
    /// Reviewer verdicts on the merged attempt: approved?, notes.
    pub reviews: Vec<(bool, Option<String>)>,
    /// Who let it merge: "approved by a human", "veto window passed", "merged without a wait".
    pub approval: String,
    pub attempts: usize,
    pub tokens: u64,
    pub cost_usd: f64,
    /// Its commits on the integration branch, oldest first: short id and subject.
    pub commits: Vec<(String, String)>,
}

/// The title: the plan's name, else the only task's title, else the first's and how many more.
pub fn title(plan: Option<&str>, tasks: &[MergedTask]) -> String {
    match (plan.filter(|p| !p.trim().is_empty()), tasks) {
        (Some(p), _) => p.to_string(),
        (None, [one]) => one.title.clone(),
        (None, [first, rest @ ..]) => format!("{} (+{} more)", first.title, rest.len()),
        (None, []) => "Work merged by orch-tui".to_string(),
    }
}

/// The body: a line saying what it holds, one section per task in merge order, then the tasks
/// that are not in it.
pub fn body(
    branch: &str,
    base: &str,
    tasks: &[MergedTask],
    left_out: &[(String, String)],
) -> String {
    let commits: usize = tasks.iter().map(|t| t.commits.len()).sum();
    let mut out = format!(
        "Merged by orch-tui from `{branch}` onto `{base}`: {} task{}, {} commit{}.\n",
        tasks.len(),
        plural(tasks.len()),
        commits,
        plural(commits)
    );
    for t in tasks {
        out.push('\n');
        out.push_str(&section(t));
    }
    if !left_out.is_empty() {
        out.push_str("\n## Not in this pull request\n\n");
        for (id, state) in left_out {
            out.push_str(&format!("- `{id}`: {state}\n"));
        }
    }
    out
}

/// One task's section (also the whole body of its own pull request in per-task mode).
pub fn section(t: &MergedTask) -> String {
    let mut out = format!("## {} (`{}`)\n\n", t.title, t.id);
    if t.checks.is_empty() {
        out.push_str("- checks: none\n");
    } else {
        let list: Vec<String> = t
            .checks
            .iter()
            .map(|(cmd, ok)| format!("{} `{cmd}`", if *ok { "✓" } else { "✗" }))
            .collect();
        out.push_str(&format!("- checks: {}\n", list.join(", ")));
    }
    for (approve, notes) in &t.reviews {
        let verdict = if *approve {
            "approved"
        } else {
            "asked for changes"
        };
        match notes.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => out.push_str(&format!("- review: {verdict}: {}\n", one_line(n))),
            None => out.push_str(&format!("- review: {verdict}\n")),
        }
    }
    if !t.approval.is_empty() {
        out.push_str(&format!("- merge: {}\n", t.approval));
    }
    out.push_str(&format!(
        "- spend: {} tokens, ${:.2}, {} attempt{}\n",
        t.tokens,
        t.cost_usd,
        t.attempts,
        plural(t.attempts)
    ));
    if !t.commits.is_empty() {
        out.push_str("- commits:\n");
        for (oid, subject) in &t.commits {
            out.push_str(&format!("  - `{oid}` {subject}\n"));
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Notes on one line, so a reviewer's paragraph does not break the list.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> MergedTask {
        MergedTask {
            id: id.into(),
            title: format!("Do {id}"),
            checks: vec![("cargo test -q".into(), true)],
            reviews: vec![(false, Some("use\nthe builder".into())), (true, None)],
            approval: "approved by a human".into(),
            attempts: 2,
            tokens: 1200,
            cost_usd: 0.13,
            commits: vec![("abcd1234".into(), format!("Do {id}"))],
        }
    }

    #[test]
    fn the_title_comes_from_the_plan_or_the_tasks() {
        assert_eq!(title(Some("payments"), &[task("a")]), "payments");
        assert_eq!(title(None, &[task("a")]), "Do a");
        assert_eq!(title(Some(" "), &[task("a"), task("b")]), "Do a (+1 more)");
    }

    #[test]
    fn the_body_tells_each_task_through_the_funnel() {
        let b = body(
            "orch/integration",
            "main",
            &[task("a"), task("b")],
            &[("c".into(), "failed".into())],
        );
        for want in [
            "from `orch/integration` onto `main`: 2 tasks, 2 commits.",
            "## Do a (`a`)",
            "- checks: ✓ `cargo test -q`",
            "- review: asked for changes: use the builder",
            "- review: approved\n",
            "- merge: approved by a human",
            "- spend: 1200 tokens, $0.13, 2 attempts",
            "  - `abcd1234` Do b",
            "## Not in this pull request\n\n- `c`: failed",
        ] {
            assert!(b.contains(want), "missing {want:?} in\n{b}");
        }
    }
}
