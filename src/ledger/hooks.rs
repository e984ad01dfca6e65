//! Reports from an agent's hooks (`orch-tui hook`), fenced like `worker` calls (the attempt's
//! token, the current epoch, the caller descending from the agent): the state a hook shows, and
//! permission requests with their answers — from a rule, or from the human.

use rusqlite::{Connection, OptionalExtension, params};

use super::events::append;
use super::worker::{Caller, fence};
use super::{Ledger, LedgerError, Result};
use crate::core::domain::{Actor, AttemptId, AttemptNo, EventKind, Substatus};
use crate::core::hooks::HookReport;
use crate::core::ops::EventData;
use crate::core::permissions::{Decision, Rule};
use crate::core::supervisor::screen_replaces;

fn json(d: &EventData) -> serde_json::Value {
    serde_json::to_value(d).unwrap_or(serde_json::Value::Null)
}

/// A permission request waiting for its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingPermission {
    pub seq: i64,
    pub task: String,
    pub attempt: AttemptNo,
    pub tool: String,
    pub subject: String,
    /// `hook` or `screen`.
    pub source: String,
}

/// The state a hook shows, written for a live attempt (the supervisor reads it as the agent's).
/// `only_state`: the report says only the state (`HookReport::says_only_the_state`), so it is
/// read as the screen's prompts are (`screen_replaces`: an idle notice does not end a wait, and
/// nothing revives an ended agent), and it keeps the question already recorded for that same
/// state.
fn set_state(
    tx: &Connection,
    id: AttemptId,
    st: Substatus,
    question: Option<&str>,
    only_state: bool,
    announced: Option<&str>,
) -> Result<()> {
    // A PreToolUse that lands after the permission request for its own call is stale.
    if let Some(call) = announced
        && let Some((Substatus::WaitingPermission, Some(asked))) =
            super::agents::recorded_state(tx, id)?
        && asked == call
    {
        return Ok(());
    }
    let keep = st.is_waiting() || st == Substatus::Idle;
    let mut question = if keep {
        question.map(str::to_string)
    } else {
        None
    };
    let now = match only_state {
        true => super::agents::recorded_state(tx, id)?,
        false => None,
    };
    if let Some((now, asked)) = now {
        if now == st {
            question = asked.or(question);
        } else if !screen_replaces(now, st) {
            return Ok(());
        }
    }
    tx.execute(
        "UPDATE attempts SET substatus = ?2, question = ?3
         WHERE id = ?1 AND state IN ('starting', 'running')",
        params![id, st, question],
    )?;
    Ok(())
}

impl Ledger {
    /// Record what a hook said, fenced. Returns the sequence number of the permission request
    /// it made, if it is one.
    pub fn hook_report(
        &mut self,
        task: &str,
        n: AttemptNo,
        token: &str,
        r: &HookReport,
        caller: &Caller,
    ) -> Result<Option<i64>> {
        self.write(|tx| {
            let (id, _) = fence(tx, task, n, token, caller)?;
            if let Some(st) = r.substatus {
                let announced = r.announced_call();
                set_state(
                    tx,
                    id,
                    st,
                    r.question.as_deref(),
                    r.says_only_the_state(),
                    announced.as_deref(),
                )?;
            }
            if let Some(session) = &r.session {
                tx.execute(
                    "UPDATE attempts SET session = ?2 WHERE id = ?1 AND session IS NULL",
                    params![id, session],
                )?;
            }
            let data = EventData {
                hook: Some(r.hook.clone()),
                rule: Some(r.rule.clone()),
                substatus: r.substatus,
                excerpt: r
                    .question
                    .as_deref()
                    .map(|q| crate::core::agent_event::short_text(q, 500)),
                session: r.session.clone(),
                transcript: r.transcript.clone(),
                tool: r.tool.clone(),
                subject: r.subject.clone(),
                ..EventData::default()
            };
            let kind = if r.substatus.is_some() {
                EventKind::AgentState
            } else {
                EventKind::Hook
            };
            append(tx, Some(task), Some(n), Actor::Agent, kind, &json(&data))?;
            if !r.is_permission_request() {
                return Ok(None);
            }
            let req = EventData {
                tool: r.tool.clone(),
                subject: r.subject.clone(),
                source: Some("hook".into()),
                ..EventData::default()
            };
            Ok(Some(append(
                tx,
                Some(task),
                Some(n),
                Actor::Agent,
                EventKind::Permission,
                &json(&req),
            )?))
        })
    }

    /// The answer to permission request `seq`, once there is one: the decision and its note.
    pub fn permission_answer(&self, seq: i64) -> Result<Option<(Decision, Option<String>)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT data FROM events WHERE seq > ?1 AND kind = 'permission'
               AND json_extract(data, '$.request') = ?1 ORDER BY seq LIMIT 1",
        )?;
        let data: Option<String> = stmt.query_row([seq], |r| r.get(0)).optional()?;
        Ok(data.and_then(|d| {
            let d: EventData = serde_json::from_str(&d).ok()?;
            let decision = Decision::parse(d.decision.as_deref()?)?;
            Some((decision, d.note))
        }))
    }

    /// The oldest unanswered permission request of a task's live attempt.
    pub fn pending_permission(&self, task: &str) -> Result<Option<PendingPermission>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.seq, e.attempt, e.data FROM events e
             JOIN attempts a ON a.task = e.task AND a.n = e.attempt AND a.role = 'agent'
             WHERE e.task = ?1 AND e.kind = 'permission' AND a.state IN ('starting', 'running')
               AND json_extract(e.data, '$.decision') IS NULL
               AND NOT EXISTS (SELECT 1 FROM events d WHERE d.kind = 'permission'
                   AND d.seq > e.seq AND json_extract(d.data, '$.request') = e.seq)
             ORDER BY e.seq LIMIT 1",
        )?;
        let row: Option<(i64, AttemptNo, String)> = stmt
            .query_row([task], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        Ok(row.map(|(seq, attempt, data)| {
            let d: EventData = serde_json::from_str(&data).unwrap_or_default();
            PendingPermission {
                seq,
                task: task.to_string(),
                attempt,
                tool: d.tool.unwrap_or_default(),
                subject: d.subject.unwrap_or_default(),
                source: d.source.unwrap_or_else(|| "hook".into()),
            }
        }))
    }

    /// Answer request `p`: a decision event (the human's, or a rule's named in `rule`), and the
    /// agent works again. An "always" answer records the rule it adds for the rest of the run.
    pub fn answer_permission(
        &mut self,
        p: &PendingPermission,
        decision: Decision,
        note: Option<&str>,
        actor: Actor,
        rule: Option<&str>,
    ) -> Result<()> {
        self.write(|tx| {
            let epoch: i64 =
                tx.query_row("SELECT COALESCE(MAX(epoch), 0) FROM supervisor", [], |r| {
                    r.get(0)
                })?;
            let always = (decision == Decision::Always)
                .then(|| Rule::for_call(&p.tool, &p.subject).to_string());
            let data = EventData {
                request: Some(p.seq),
                decision: Some(decision.as_str().into()),
                note: note.map(String::from),
                tool: Some(p.tool.clone()),
                subject: Some(p.subject.clone()),
                source: Some(p.source.clone()),
                rule: rule.map(String::from).or(always),
                epoch: Some(epoch),
                ..EventData::default()
            };
            let id: Option<AttemptId> = tx
                .query_row(
                    "SELECT id FROM attempts WHERE task = ?1 AND n = ?2 AND role = 'agent'",
                    params![p.task, p.attempt],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else {
                return Err(LedgerError::BadInput(format!(
                    "no attempt {} of task `{}`",
                    p.attempt, p.task
                )));
            };
            set_state(tx, id, Substatus::Busy, None, false, None)?;
            append(
                tx,
                Some(&p.task),
                Some(p.attempt),
                actor,
                EventKind::Permission,
                &json(&data),
            )?;
            Ok(())
        })
    }

    /// An interactive session's spend, from the transcript its hooks name (fenced like a hook
    /// report): the conversation's totals less what earlier attempts of the same conversation
    /// recorded. Spend never goes down.
    #[allow(clippy::too_many_arguments)]
    pub fn hook_spend(
        &mut self,
        task: &str,
        n: AttemptNo,
        token: &str,
        caller: &Caller,
        session_tokens: (u64, u64),
        session_cost_usd: f64,
    ) -> Result<()> {
        self.write(|tx| {
            let (id, _) = fence(tx, task, n, token, caller)?;
            let (before_in, before_out, before_cost): (i64, i64, f64) = tx.query_row(
                "SELECT COALESCE(SUM(e.tokens_in), 0), COALESCE(SUM(e.tokens_out), 0),
                        COALESCE(SUM(e.cost_usd), 0)
                 FROM attempts a JOIN attempts e ON e.task = a.task AND e.role = a.role
                   AND e.session = a.session AND e.n < a.n
                 WHERE a.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            super::agents::record_spend_as(
                tx,
                id,
                session_tokens.0.saturating_sub(before_in.max(0) as u64),
                session_tokens.1.saturating_sub(before_out.max(0) as u64),
                (session_cost_usd - before_cost).max(0.0),
                Actor::Agent,
            )
        })
    }

    /// The profile attempt `n` of `task` runs under.
    pub fn attempt_profile(&self, task: &str, n: AttemptNo) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT profile FROM attempts WHERE task = ?1 AND n = ?2 AND role = 'agent'",
                params![task, n],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The human says the agent's turn finished the task (what `worker done` says from inside):
    /// its live attempt is reported done, and the supervisor ends the agent, commits its work
    /// and sends it to review. Refused when the task has no running agent.
    pub fn turn_done_by_human(&mut self, task: &str, note: Option<&str>) -> Result<AttemptNo> {
        self.write(|tx| {
            let row: Option<(AttemptId, AttemptNo, Option<String>)> = tx
                .query_row(
                    "SELECT id, n, reported FROM attempts WHERE task = ?1 AND role = 'agent'
                       AND state IN ('starting', 'running') ORDER BY n DESC LIMIT 1",
                    [task],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((id, n, reported)) = row else {
                return Err(LedgerError::Refused(format!(
                    "task `{task}` has no running agent to finish (`orch-tui status` shows what \
                     runs); nothing changed"
                )));
            };
            if let Some(r) = reported {
                return Err(LedgerError::Refused(format!(
                    "attempt {n} of `{task}` already reported `{r}`; nothing changed"
                )));
            }
            tx.execute(
                "UPDATE attempts SET reported = 'done' WHERE id = ?1",
                params![id],
            )?;
            let data = EventData {
                why: Some("the human said the turn finished the task".into()),
                note: note.map(String::from),
                ..EventData::default()
            };
            append(
                tx,
                Some(task),
                Some(n),
                Actor::Human,
                EventKind::AgentDone,
                &json(&data),
            )?;
            Ok(n)
        })
    }

    /// A tool call a rule answered before the agent asked (Claude's PreToolUse): the decision,
    /// as an event of its own.
    pub fn rule_decision(
        &mut self,
        task: &str,
        n: AttemptNo,
        tool: &str,
        subject: &str,
        decision: Decision,
        rule: &str,
    ) -> Result<()> {
        self.write(|tx| {
            let data = EventData {
                decision: Some(decision.as_str().into()),
                tool: Some(tool.into()),
                subject: Some(subject.into()),
                source: Some("hook".into()),
                rule: Some(rule.into()),
                ..EventData::default()
            };
            append(
                tx,
                Some(task),
                Some(n),
                Actor::Supervisor,
                EventKind::Permission,
                &json(&data),
            )?;
            Ok(())
        })
    }

    /// Whether the human trusted the run's worktrees in this supervisor's run
    /// (`orch-tui answer TASK trust`).
    pub fn worktrees_trusted(&self) -> Result<bool> {
        let epoch = self.epoch()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM events WHERE kind = 'permission' AND actor = 'human'
               AND json_extract(data, '$.decision') = 'trust'
               AND json_extract(data, '$.epoch') = ?1)",
        )?;
        Ok(stmt.query_row([epoch], |r| r.get(0))?)
    }

    /// The human's answers to permission prompts shown on the screens of a task's live
    /// attempts: (attempt, the answer's seq, decision), oldest first.
    pub fn screen_answers(&self, task: &str) -> Result<Vec<(AttemptId, i64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, e.seq, json_extract(e.data, '$.decision') FROM events e
             JOIN attempts a ON a.task = e.task AND a.n = e.attempt AND a.role = 'agent'
             WHERE e.task = ?1 AND e.kind = 'permission' AND e.actor = 'human'
               AND json_extract(e.data, '$.source') = 'screen'
               AND json_extract(e.data, '$.request') IS NOT NULL
               AND a.state IN ('starting', 'running')
             ORDER BY e.seq",
        )?;
        let rows = stmt.query_map([task], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The human trusts the run's worktrees for this run, answering the first-run dialog a
    /// task's agent waits at: the supervisor answers it (and every later one of this run).
    pub fn trust_worktrees(&mut self, task: &str) -> Result<AttemptNo> {
        self.write(|tx| {
            let row: Option<AttemptNo> = tx
                .query_row(
                    "SELECT n FROM attempts WHERE task = ?1 AND role = 'agent'
                       AND state IN ('starting', 'running') AND substatus = 'waiting_dialog'
                     ORDER BY n DESC LIMIT 1",
                    [task],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(n) = row else {
                return Err(LedgerError::Refused(format!(
                    "no agent of task `{task}` waits at a first-run dialog; nothing changed"
                )));
            };
            let epoch: i64 =
                tx.query_row("SELECT COALESCE(MAX(epoch), 0) FROM supervisor", [], |r| {
                    r.get(0)
                })?;
            let data = EventData {
                decision: Some("trust".into()),
                source: Some("screen".into()),
                rule: Some("trust .orch/worktrees/ for this run".into()),
                epoch: Some(epoch),
                ..EventData::default()
            };
            append(
                tx,
                Some(task),
                Some(n),
                Actor::Human,
                EventKind::Permission,
                &json(&data),
            )?;
            Ok(n)
        })
    }

    /// The rules "allow always" answers added in this supervisor's run.
    pub fn always_rules(&self) -> Result<Vec<Rule>> {
        let epoch = self.epoch()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT json_extract(data, '$.rule') FROM events WHERE kind = 'permission'
               AND json_extract(data, '$.decision') = 'always'
               AND json_extract(data, '$.epoch') = ?1",
        )?;
        let rows = stmt.query_map([epoch], |r| r.get::<_, Option<String>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            if let Some(text) = r?
                && let Ok(rule) = Rule::parse(&text)
            {
                out.push(rule);
            }
        }
        Ok(out)
    }
}
