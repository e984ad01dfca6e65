//! `orch-tui add` and `orch-tui edit` (and the TUI's forms, later): the decisions of
//! `core::new_task` on the ledger as it stands, written in one transaction each with actor
//! `human`. A running supervisor sees the `task_added` / `spec_changed` event (after a poke)
//! and takes the task's new rows; nothing else has to tell it.

use std::collections::BTreeMap;

use crate::core::config::{Config, check_plan_against_config};
use crate::core::diag::Diagnostic;
use crate::core::new_task::{ADD, Draft, about_flag, decide_add, decide_edit};
use crate::core::plan::{Plan, TaskSpec};
use crate::core::state::TaskState;
use crate::ledger::{
    Ledger, LedgerError, TaskDefaults, edit_prompt, insert_task, settle_dag, task_in, task_states,
};

/// Every task's state, by id (what `draft_task` checks a draft against).
pub fn existing_tasks(ledger: &Ledger) -> Result<BTreeMap<String, TaskState>, LedgerError> {
    task_states(ledger.conn())
}

/// The task `draft` describes, checked against the ledger's tasks (`existing`, empty before
/// there is a ledger) and the config (its agent exists and has the task's capabilities); every
/// problem names its flag.
pub fn draft_task(
    existing: &BTreeMap<String, TaskState>,
    draft: &Draft,
    cfg: &Config,
) -> Result<TaskSpec, Vec<Diagnostic>> {
    let spec = decide_add(draft, existing)?;
    let problems = check_plan_against_config(&one_task_plan(&spec), cfg);
    if problems.is_empty() {
        Ok(spec)
    } else {
        let known: Vec<&str> = cfg.agents.keys().map(String::as_str).collect();
        let retold = problems.into_iter().map(|mut d| {
            // The plan's hint speaks of plan keys; this task was made with flags.
            if d.message.contains("names no agent") {
                d.hint = format!(
                    "pass --agent with one of {}, or set default_agent in .orch/config.toml",
                    known.join(", ")
                );
            }
            about_flag("--agent", d)
        });
        Err(retold.collect())
    }
}

/// `spec` as a plan of one task (what the plan checks take).
pub fn one_task_plan(spec: &TaskSpec) -> Plan {
    Plan {
        name: String::new(),
        file: ADD.into(),
        tasks: vec![spec.clone()],
    }
}

/// What `add_task` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub id: String,
    /// Where the task stands once the DAG is settled: ready, pending or blocked.
    pub state: TaskState,
    pub reason: Option<String>,
}

/// Write `spec` as a new task, with the config's defaults for what it leaves unset, and settle
/// the DAG in the same transaction (a task whose dependencies are done is ready at once; one
/// behind a failed or cancelled task is blocked).
pub fn add_task(ledger: &mut Ledger, spec: &TaskSpec, cfg: &Config) -> Result<Added, LedgerError> {
    let defaults = TaskDefaults {
        max_attempts: cfg.retry.max_attempts,
        budget_time_ms: cfg.task_budget.time_ms,
        budget_tokens: cfg.task_budget.tokens,
        budget_cost_usd: cfg.task_budget.cost_usd,
    };
    ledger.write(|tx| {
        insert_task(tx, spec, &defaults)?;
        settle_dag(tx)?;
        let row = task_in(tx, &spec.id)?
            .ok_or_else(|| LedgerError::Conflict(format!("task `{}` vanished", spec.id)))?;
        Ok(Added {
            id: row.id,
            state: row.state,
            reason: row.reason,
        })
    })
}

/// What `edit_task` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edited {
    /// The prompt is now spec version `version`; the task is in `state`.
    Changed { version: i64, state: TaskState },
    /// The text was the same: nothing was written.
    Unchanged,
}

/// Write `prompt` over task `id`'s, decided on the row as it stands inside the transaction.
pub fn edit_task(ledger: &mut Ledger, id: &str, prompt: &str) -> Result<Edited, LedgerError> {
    ledger.write(|tx| {
        let row = task_in(tx, id)?.ok_or_else(|| {
            LedgerError::BadInput(format!(
                "no task `{id}` in the ledger: `orch-tui status` lists the tasks"
            ))
        })?;
        let hash = crate::core::plan::content_hash(&row.prompt);
        match decide_edit(id, row.state, &hash, prompt).map_err(LedgerError::BadInput)? {
            None => Ok(Edited::Unchanged),
            Some(edit) => Ok(Edited::Changed {
                version: edit_prompt(tx, &edit)?,
                state: row.state,
            }),
        }
    })
}

/// The prompt of task `id` as the ledger has it (what an editor starts from).
pub fn prompt_of(ledger: &Ledger, id: &str) -> Result<String, LedgerError> {
    ledger.task(id)?.map(|t| t.prompt).ok_or_else(|| {
        LedgerError::BadInput(format!(
            "no task `{id}` in the ledger: `orch-tui status` lists the tasks"
        ))
    })
}
