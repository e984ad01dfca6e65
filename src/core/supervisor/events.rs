//! What goes into the decision function (events) and what comes out (effects), with the jobs the
//! effects ask for and the results those jobs report.

use super::WriteId;
use super::model::{AttemptRec, TaskRec};
use crate::core::domain::{AttemptId, AttemptNo, Role};
use crate::core::ops::Op;

/// Something happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The executor read the ledger and looked at the world at start (boxed: it is by far the
    /// largest event, and comes once).
    Boot(Box<Boot>),
    /// Rows re-read from the ledger after another process wrote it (an agent's report, a human
    /// command, a plan load).
    Observed(Observed),
    /// A write committed.
    Written(WriteId),
    /// A write lost its compare-and-swap (the world moved): nothing of it landed; here are the
    /// rows it was about, as they are now.
    Lost {
        write: WriteId,
        observed: Observed,
    },
    /// Time passed (a timer the supervisor asked for, or the fallback tick).
    Tick,
    SetupDone {
        attempt: AttemptId,
        result: Result<Started, String>,
    },
    /// The agent's process ended and its output is complete.
    Exited {
        attempt: AttemptId,
        exit: Exit,
    },
    /// The attempt's work was collected into a commit (or it failed to be).
    Collected {
        attempt: AttemptId,
        result: Result<Change, JobFailure>,
    },
    ChecksDone {
        task: String,
        n: AttemptNo,
        results: Vec<CheckOutcome>,
    },
    MergePrepared {
        task: String,
        result: MergeOutcome,
    },
    IntegrationMoved {
        task: String,
        result: MoveOutcome,
    },
    /// The integration branch was replayed onto the new base `onto` from integration tip
    /// `from` (and checked), or why not.
    SyncPrepared {
        onto: String,
        from: String,
        result: SyncOutcome,
    },
    /// The integration branch was moved to a sync's `tip` (or why not).
    SyncMoved {
        tip: String,
        result: MoveOutcome,
    },
    /// A finished task's worktree and branch were tidied away (or why not).
    Tidied {
        tidy: Tidy,
        result: Result<(), String>,
    },
    /// The human typed Enter into an agent that waited for an answer.
    Answered {
        attempt: AttemptId,
    },
    /// Stop the run: end the agents (or leave them to the next start).
    Stop {
        stop_agents: bool,
    },
    /// Something a live agent said, as its adapter parsed it (never a pane line).
    Agent {
        attempt: AttemptId,
        event: crate::core::agent_event::AgentEvent,
    },
    /// The human typed into this agent's pane just now (a change request waits until they
    /// stop: `kept::TYPING_QUIET_MS`).
    HumanTyping {
        attempt: AttemptId,
    },
    /// An interactive agent's screen settled on a state (a screen rule held, debounced).
    Screen {
        attempt: AttemptId,
        seen: crate::core::screen_rules::ScreenMatch,
    },
}

/// What the executor found at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Boot {
    pub tasks: Vec<TaskRec>,
    pub attempts: Vec<AttemptRec>,
    /// The integration tip the ledger says the supervisor last wrote.
    pub recorded_tip: Option<String>,
    /// The integration branch's tip now (`None`: the branch is gone).
    pub actual_tip: Option<String>,
    pub hold: Option<String>,
    /// For each attempt with a recorded merge tip: is that tip in the integration branch now?
    pub merged: Vec<(AttemptId, bool)>,
    /// Worktrees under `.orch/worktrees/`.
    pub worktrees: Vec<WorktreeFact>,
    /// The base and any sync, as recorded.
    pub sync: SyncState,
    /// When no base is recorded yet: the run's base ref and the commit the integration branch
    /// stands on (where it meets that base), to record.
    pub base: Option<(String, String)>,
    /// Gates recorded by an earlier supervisor: (kind, account or profile, until, why).
    pub gates: Vec<(crate::core::ops::GateKind, String, u64, String)>,
    /// What holds each live attempt of an earlier supervisor now (only attempts with a
    /// holder; the rest have nothing left running).
    pub holders: Vec<HolderFact>,
}

/// An earlier supervisor's attempt, as its holder (`agent::holder`) answers at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HolderFact {
    pub attempt: AttemptId,
    /// The attempt whose holder runs it: itself, or the first attempt of a session kept
    /// through review that later attempts continued in the same process.
    pub holder: AttemptId,
    /// The holder answered and its agent runs, with this pid.
    pub live_pid: Option<u32>,
    /// The agent ended while no supervisor ran; how, as the holder recorded it.
    pub exit: Option<Exit>,
    /// Time it was held frozen (its task paused) so far: not counted by a time budget.
    pub held_ms: u64,
    /// Its tree is stopped now (frozen for a paused task).
    pub frozen: bool,
}

/// Take over an earlier supervisor's agent that still runs in its holder; `Exited` follows
/// when it ends (at once, if it cannot be reached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopt {
    pub attempt: AttemptId,
    pub task: String,
    pub role: Role,
    pub profile: String,
    pub pid: u32,
    /// Held for its paused task (frozen or interrupted): its clock stands still.
    pub held: bool,
    /// The attempt whose holder runs it (`HolderFact::holder`).
    pub holder: AttemptId,
    /// What earlier attempts of the conversation it resumed spent (`None`: its own
    /// conversation): a Codex run reports the conversation's cumulative usage.
    pub resumed: Option<crate::core::agent_event::Tokens>,
}

/// The base branch the integration branch stands on, and a sync onto it, as the ledger's
/// supervisor row records them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// The base's full ref name (`refs/heads/main`, `refs/remotes/origin/main`).
    pub base_ref: Option<String>,
    /// The base commit the integration branch stands on.
    pub base_oid: Option<String>,
    /// A sync asked for and not over yet.
    pub request: Option<SyncRequest>,
    /// Why the last sync stopped without moving the branch, until the next one is asked for.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// The base ref to sync onto (another than the recorded one switches the base).
    pub refname: String,
    /// Its commit when the sync was asked for.
    pub onto: String,
    /// `(from, tip)`: the replayed tip, recorded before the branch moves, and the integration
    /// tip it was made from.
    pub recorded: Option<(String, String)>,
}

/// A worktree found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeFact {
    pub path: String,
    pub task: String,
    pub n: Option<AttemptNo>,
}

/// Rows as they are in the ledger now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub tasks: Vec<TaskRec>,
    pub attempts: Vec<AttemptRec>,
    /// `Some(hold)` when the run's hold was read (it may have been released).
    pub hold: Option<Option<String>>,
    pub integration_tip: Option<String>,
    /// `Some` when the base and sync were read (boxed: it would double every event's size).
    pub sync: Option<Box<SyncState>>,
    /// The human trusted the run's worktrees for this run (`orch-tui answer TASK trust`).
    pub trusted: bool,
    /// The human's answers to permission prompts seen on screen, for these tasks' live
    /// attempts: (attempt, the answer's event seq, decision).
    pub screen_answers: Vec<(AttemptId, i64, String)>,
}

/// The agent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub pid: u32,
    /// The commit its worktree started from.
    pub base: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// A job that could not do its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    pub message: String,
    /// It hit its timeout (a hung git hook, say): the human should look.
    pub timed_out: bool,
}

/// What an attempt changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The change's tip commit; `None` when the agent changed nothing at all.
    pub tip: Option<String>,
    pub diff_lines: u64,
    /// The agent made commits itself.
    pub agent_committed: bool,
    /// Branches the agent left behind, kept under backup refs.
    pub strays: Vec<Stray>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    pub branch: String,
    pub tip: String,
    /// Where its commits are kept; `None` when the change or the base holds them all.
    pub backup_ref: Option<String>,
    /// Its commits were taken as the change.
    pub adopted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub command: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub tail: String,
}

/// What replaying a task onto the integration tip gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The tree to write, checked (again, when the base had moved).
    /// `from`: the attempt's own commit the tree was made from.
    /// `onto`: the integration tip it was made on.
    Ready {
        tip: String,
        rechecked: bool,
        from: String,
        onto: String,
        /// The re-checks on the rebased tree, when they ran (all passed).
        results: Vec<CheckOutcome>,
    },
    /// The change is already on the integration tip (or empty): nothing to write.
    NothingToMerge,
    Conflict {
        files: Vec<String>,
    },
    /// The base moved and a check fails on the rebased tree.
    ChecksFailed {
        results: Vec<CheckOutcome>,
    },
    Failed(JobFailure),
}

/// What replaying the integration branch onto a moved base gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The branch replayed onto the new base, its checks passed: `tip` is what to write.
    Ready {
        tip: String,
        results: Vec<CheckOutcome>,
    },
    /// The integration branch holds the new base already: nothing to replay or move.
    UpToDate,
    /// A replayed commit conflicts with the new base in these paths.
    Conflict {
        files: Vec<String>,
    },
    /// A check fails on the replayed branch.
    ChecksFailed {
        results: Vec<CheckOutcome>,
    },
    Failed(JobFailure),
}

/// What moving the integration branch gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveOutcome {
    Moved,
    /// The branch was not where the supervisor left it: someone else moved (or deleted) it.
    NotWhereLeft {
        found: Option<String>,
    },
    Failed(JobFailure),
}

/// Something to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Write these ops in one transaction; answer with `Written` or `Lost` (with fresh rows of
    /// `tasks`: every task the ops touch, directly or through an attempt).
    Write {
        id: WriteId,
        ops: Vec<Op>,
        tasks: Vec<String>,
    },
    /// Make the attempt's worktree (agents) and start its process; answer with `SetupDone`.
    Setup(Setup),
    /// Stop an agent: TERM, grace, KILL, with every descendant; `Exited` follows. An
    /// interactive session whose adapter names its stop keys is first interrupted and asked to
    /// exit, and given a grace to end on its own.
    Stop {
        attempt: AttemptId,
        why: String,
    },
    /// Hold a paused task's agent where it is: stop its processes (SIGSTOP to its group and
    /// tree). Nothing answers; `Thaw` lets it go on.
    Freeze {
        attempt: AttemptId,
    },
    Thaw {
        attempt: AttemptId,
    },
    /// Hold a paused task's interactive session agent (Claude, Codex): interrupt its turn (the
    /// key its screen names, Escape) and keep the process and its conversation. `Continue`
    /// asks it to go on where it stopped.
    Interrupt {
        attempt: AttemptId,
    },
    Continue {
        attempt: AttemptId,
    },
    /// Type keys into an interactive agent (an answer to its dialog), each chunk a moment
    /// after the one before (a TUI reads an arrow and an Enter in one read as one key).
    Type {
        attempt: AttemptId,
        keys: Vec<Vec<u8>>,
    },
    /// Type `text` into an interactive session as its next turn: a bracketed paste when its
    /// terminal asked for one, Enter sent apart a moment later.
    SendTurn {
        attempt: AttemptId,
        text: String,
    },
    /// The process of attempt `from` (a session kept through review) now runs attempt `to`:
    /// what it does and says from now on is `to`'s. Nothing answers.
    HandOver {
        from: AttemptId,
        to: AttemptId,
    },
    /// Commit what the agent left and find its change; answer with `Collected`.
    Collect(Collect),
    /// Run checks in the worktree; answer with `ChecksDone`.
    RunChecks {
        task: String,
        n: AttemptNo,
        worktree: String,
        log: String,
        commands: Vec<String>,
    },
    /// Replay onto the integration tip (and re-check); answer with `MergePrepared`.
    PrepareMerge(MergePrep),
    /// Move the integration branch from `onto` to `tip` (compare-and-swap); answer with
    /// `IntegrationMoved`.
    MoveIntegration {
        task: String,
        tip: String,
        onto: String,
    },
    /// Replay the integration branch onto a moved base and run the config's merge checks on
    /// it; answer with `SyncPrepared`.
    PrepareSync(SyncPrep),
    /// Move the integration branch from `from` to a sync's `tip` (compare-and-swap); answer with
    /// `SyncMoved`.
    MoveSync {
        tip: String,
        from: String,
    },
    /// Remove a finished attempt's worktree and branch, backing up what would be lost; answer
    /// with `Tidied`.
    Tidy(Tidy),
    /// Keep `oid` under the ref `name`.
    Backup {
        name: String,
        oid: String,
    },
    /// Stop every process a previous supervisor left (its agents, by pid and by token).
    ReapStale {
        attempts: Vec<(AttemptId, Option<u32>)>,
        /// Adopted attempts: their processes carry an earlier epoch but are ours now.
        keep: Vec<AttemptId>,
    },
    /// Follow an adopted agent (see [`Adopt`]).
    Adopt(Adopt),
    /// A line of progress for whoever watches.
    Say(String),
}

/// How to start one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    pub attempt: AttemptId,
    pub task: String,
    pub n: AttemptNo,
    pub role: Role,
    pub profile: String,
    pub worktree: String,
    pub branch: String,
    pub log_dir: String,
    /// Agents: the integration tip the worktree starts from.
    pub base: String,
    /// Agents get a fresh worktree (unless they continue an earlier attempt's); a reviewer
    /// reads the agent's.
    pub create_worktree: bool,
    pub prompt: PromptSpec,
    /// The agent's conversation to continue (`--resume`, `exec resume`).
    pub resume: Option<String>,
    /// What the task may still spend, in dollars (Claude's own `--max-budget-usd`).
    pub max_budget_usd: Option<f64>,
    /// What the resumed conversation spent before this attempt.
    pub baseline: super::Baseline,
    /// Agents started during a dependency's veto window: that dependency's work, replayed onto
    /// `base` for the worktree (the replayed commit is the attempt's base).
    pub speculative: Option<super::Candidate>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PromptSpec {
    /// The task's prompt, with what the previous attempt ran into.
    Task(String),
    /// A review of agent attempt `of` (its diff and checks are read by the executor).
    Review {
        of: AttemptNo,
        base: String,
        commit: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Collect {
    pub attempt: AttemptId,
    pub task: String,
    pub n: AttemptNo,
    pub worktree: String,
    pub branch: String,
    pub base: String,
    pub author_name: String,
    pub author_email: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MergePrep {
    pub task: String,
    pub attempt: AttemptId,
    pub n: AttemptNo,
    pub base: String,
    pub commit: String,
    pub branch: String,
    pub worktree: String,
    /// The integration tip the supervisor last wrote: the merge goes onto exactly this.
    pub onto: String,
    pub checks: Vec<String>,
    pub log: String,
    /// The attempt's work was never collected (approved after its collection failed): collect
    /// it first.
    pub collect: Option<Collect>,
}

/// How to replay the integration branch onto its moved base.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPrep {
    /// The base's ref (for messages).
    pub refname: String,
    /// The base commit the branch stands on now (`None`: unknown, where it meets `onto`).
    pub base: Option<String>,
    /// The new base commit.
    pub onto: String,
    /// The integration tip the supervisor last wrote: what is replayed.
    pub from: String,
    /// The config's merge checks (no one task owns a sync).
    pub checks: Vec<String>,
    pub log: String,
}

/// A finished attempt's leftovers. `merged`: the commit that landed and the agent's own commit
/// (equal for a fast-forward), so only what would become unreachable is backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tidy {
    pub task: String,
    pub n: Option<AttemptNo>,
    pub worktree: String,
    pub branch: String,
    pub merged: Option<(String, String)>,
}
