//! The built-in simulated agent, `orch-tui sim-agent` (docs/sim-agent.md).
//!
//! It stands in for a real coding agent in the demo and in tests: it runs in a PTY inside a
//! task's worktree, plays the `@sim` directives found in its prompt (edit files, draw progress,
//! ask the human, report usage, fail, hang, flood the terminal) and exits with a code the
//! supervisor interprets like any agent's. Without directives it makes a small, deterministic,
//! conflict-free edit so the demo has real work to review and merge.
//!
//! [`run`] reads the real environment and stdio; [`run_with`] takes every input explicitly so
//! tests can drive it in-process.

mod directive;
mod files;
mod paint;
mod worker;

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use directive::{Directive, Line};
use paint::{BOLD, DIM, RED, RESET, YELLOW};

/// Everything the simulated agent reads and writes, made explicit.
pub struct SimEnv<'a> {
    /// The prompt text (from `ORCH_PROMPT_FILE`).
    pub prompt: String,
    /// The task's worktree; every file the agent writes is inside it.
    pub worktree: PathBuf,
    /// The task id (`ORCH_TASK`).
    pub task: String,
    /// The 1-based attempt number (`ORCH_ATTEMPT`).
    pub attempt: u32,
    /// The program run as `BIN worker ...` to report to the supervisor (`ORCH_BIN`).
    pub bin: PathBuf,
    /// Where answers to `@sim ask` are read from (the PTY in real use).
    pub input: &'a mut dyn BufRead,
    /// The agent's terminal output.
    pub out: &'a mut dyn Write,
    /// Warnings and errors.
    pub err: &'a mut dyn Write,
}

/// Runs the simulated agent on the process's environment and stdio; returns the exit code.
///
/// Reads `ORCH_TASK`, `ORCH_PROMPT_FILE` (both required), `ORCH_ATTEMPT` (default 1),
/// `ORCH_WORKTREE` (default: the current directory) and `ORCH_BIN` (default: this executable).
pub fn run() -> i32 {
    let mut stderr = io::stderr().lock();
    let inputs = match EnvInputs::from_process() {
        Ok(inputs) => inputs,
        Err(message) => {
            let _ = writeln!(stderr, "{RED}error:{RESET} sim-agent: {message}");
            return 2;
        }
    };
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    run_with(SimEnv {
        prompt: inputs.prompt,
        worktree: inputs.worktree,
        task: inputs.task,
        attempt: inputs.attempt,
        bin: inputs.bin,
        input: &mut stdin,
        out: &mut stdout,
        err: &mut stderr,
    })
}

/// Plays the prompt's directives against explicit inputs; returns the exit code.
pub fn run_with(mut env: SimEnv<'_>) -> i32 {
    let lines = directive::parse_prompt(&env.prompt);
    let code = match play(&mut env, &lines) {
        Ok(code) => code,
        Err(failure) => {
            let _ = writeln!(env.err, "{RED}error:{RESET} sim-agent: {}", failure.message);
            failure.code
        }
    };
    // The closing line is best effort: the terminal may be gone, and the code is what counts.
    let _ = paint::finish(env.out, code);
    code
}

/// The process environment, read and checked.
struct EnvInputs {
    prompt: String,
    worktree: PathBuf,
    task: String,
    attempt: u32,
    bin: PathBuf,
}

impl EnvInputs {
    fn from_process() -> Result<Self, String> {
        const HINT: &str = "sim-agent is started by orch-tui with the ORCH_* variables set; \
                            to run it by hand, set ORCH_TASK and ORCH_PROMPT_FILE";
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let task = var("ORCH_TASK").ok_or_else(|| format!("ORCH_TASK is not set; {HINT}"))?;
        let prompt_file = var("ORCH_PROMPT_FILE")
            .ok_or_else(|| format!("ORCH_PROMPT_FILE is not set; {HINT}"))?;
        let prompt = std::fs::read_to_string(&prompt_file).map_err(|e| {
            format!("cannot read the prompt file {prompt_file} (ORCH_PROMPT_FILE): {e}")
        })?;
        let attempt = match var("ORCH_ATTEMPT") {
            None => 1,
            Some(a) => a.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                format!("ORCH_ATTEMPT is `{a}`; it must be the attempt number, 1 or more")
            })?,
        };
        let worktree = match var("ORCH_WORKTREE") {
            Some(w) => PathBuf::from(w),
            None => std::env::current_dir().map_err(|e| {
                format!("ORCH_WORKTREE is not set and the current directory is unreadable: {e}")
            })?,
        };
        let bin = match var("ORCH_BIN") {
            Some(b) => PathBuf::from(b),
            None => std::env::current_exe().map_err(|e| {
                format!(
                    "ORCH_BIN is not set and this executable's path is unknown ({e}); set ORCH_BIN"
                )
            })?,
        };
        Ok(EnvInputs {
            prompt,
            worktree,
            task,
            attempt,
            bin,
        })
    }
}

/// Something that ends the agent with an error message and a code.
struct Failure {
    code: i32,
    message: String,
}

impl Failure {
    fn new(code: i32, message: String) -> Self {
        Failure { code, message }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::new(1, format!("cannot write to the terminal: {e}"))
    }
}

enum Flow {
    Next,
    Stop(i32),
}

/// State carried between directives.
struct Player<'e, 'a> {
    env: &'e mut SimEnv<'a>,
    step_delay: Duration,
    report_done: bool,
    /// Whether a `write` or `append` was played; if not, the agent makes its default edit.
    edited: bool,
}

fn play(env: &mut SimEnv<'_>, lines: &[Line]) -> Result<i32, Failure> {
    paint::banner(env.out, &env.task, env.attempt)?;
    let mut player = Player {
        env,
        step_delay: paint::DEFAULT_STEP_DELAY,
        report_done: false,
        edited: false,
    };
    let mut code = 0;
    for line in lines {
        match &line.parsed {
            Err(warning) => {
                player.warn(&format!("prompt line {}: {warning}; ignored", line.number))
            }
            Ok(d) => {
                if let Flow::Stop(c) = player.apply(d)? {
                    code = c;
                    break;
                }
            }
        }
    }
    if code == 0 {
        if !player.edited {
            player.default_edit()?;
        }
        if player.report_done {
            player.worker(&["done".to_string()]);
        }
    }
    Ok(code)
}

impl Player<'_, '_> {
    fn warn(&mut self, message: &str) {
        // Ignored write error: a warning that cannot be shown must not stop the agent.
        let _ = writeln!(self.env.err, "{YELLOW}warning:{RESET} sim-agent: {message}");
    }

    fn say(&mut self, text: &str) -> Result<(), Failure> {
        writeln!(self.env.out, "{text}")?;
        self.env.out.flush()?;
        Ok(())
    }

    fn worker(&mut self, args: &[String]) -> bool {
        worker::call(&self.env.bin, &self.env.worktree, args, self.env.err)
    }

    fn apply(&mut self, d: &Directive) -> Result<Flow, Failure> {
        self.edited |= d.edits_files();
        match d {
            Directive::Write { path, content } => {
                files::write(&self.env.worktree, path, content).map_err(|m| Failure::new(2, m))?;
                self.say(&format!("{DIM}✎ wrote{RESET} {path}"))?;
            }
            Directive::Append { path, content } => {
                files::append(&self.env.worktree, path, content).map_err(|m| Failure::new(2, m))?;
                self.say(&format!("{DIM}✎ appended to{RESET} {path}"))?;
            }
            Directive::Sleep(duration) => thread::sleep(*duration),
            Directive::Speed(delay) => self.step_delay = *delay,
            Directive::Progress(steps) => paint::progress(self.env.out, *steps, self.step_delay)?,
            Directive::Say(text) => self.say(text)?,
            Directive::Fail(code) => {
                self.say(&format!("{RED}simulated failure{RESET} (exit code {code})"))?;
                return Ok(Flow::Stop(*code));
            }
            Directive::FailAttempts { attempts, code } => {
                let attempt = self.env.attempt;
                if attempt <= *attempts {
                    self.say(&format!(
                        "{RED}simulated failure{RESET} on attempt {attempt} \
                         (fails attempts 1 to {attempts}, exit code {code})"
                    ))?;
                    return Ok(Flow::Stop(*code));
                }
                self.say(&format!(
                    "{DIM}attempt {attempt} is past the {attempts} failing ones; carrying on{RESET}"
                ))?;
            }
            Directive::Hang { ignore_term } => return Err(self.hang(*ignore_term)),
            Directive::Ask(question) => self.ask(question)?,
            Directive::Usage {
                tokens_in,
                tokens_out,
                cost_usd,
            } => {
                self.say(&format!(
                    "{DIM}usage: {tokens_in} in, {tokens_out} out, ${cost_usd}{RESET}"
                ))?;
                self.worker(&[
                    "usage".into(),
                    "--tokens-in".into(),
                    tokens_in.to_string(),
                    "--tokens-out".into(),
                    tokens_out.to_string(),
                    "--cost-usd".into(),
                    cost_usd.to_string(),
                ]);
            }
            Directive::Flood(bytes) => {
                paint::flood(self.env.out, *bytes)?;
            }
            Directive::Done => return Ok(Flow::Stop(0)),
            Directive::Exit(code) => return Ok(Flow::Stop(*code)),
            Directive::ReportDone => self.report_done = true,
            Directive::CopyPrompt(path) => {
                let text = self.env.prompt.clone();
                files::write(&self.env.worktree, path, &text).map_err(|m| Failure::new(2, m))?;
                self.say(&format!("{DIM}✎ copied the prompt to{RESET} {path}"))?;
            }
            Directive::Verdict { approve, notes } => {
                // A reviewer judges; it must not fall back to the default edit.
                self.edited = true;
                let word = if *approve { "approve" } else { "changes" };
                self.say(&format!("{DIM}verdict:{RESET} {word} {notes}"))?;
                let mut args = vec!["verdict".to_string(), word.to_string()];
                if !notes.is_empty() {
                    args.extend(["--notes".to_string(), notes.clone()]);
                }
                self.worker(&args);
            }
            Directive::Bell => {
                self.env.out.write_all(b"\x07")?;
                self.env.out.flush()?;
            }
            Directive::Notify(text) => paint::notify(self.env.out, text)?,
            // Reserved for a later check of the agent's edits; accepted so prompts may use it.
            Directive::CheckEdit => {}
        }
        Ok(Flow::Next)
    }

    /// Returns only if the terminal is gone; otherwise the supervisor has to kill the agent.
    fn hang(&mut self, ignore_term: bool) -> Failure {
        if ignore_term {
            // SAFETY: installing SIG_IGN touches no Rust state; it only changes the disposition
            // of SIGTERM for this process, which is exactly the misbehaviour being simulated.
            let previous = unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
            if previous == libc::SIG_ERR {
                self.warn("could not ignore SIGTERM; hanging anyway");
            }
        }
        let how = if ignore_term {
            ", ignoring SIGTERM"
        } else {
            ""
        };
        if let Err(failure) = self.say(&format!(
            "{DIM}hanging (simulated{how}); the supervisor must stop me{RESET}"
        )) {
            return failure;
        }
        loop {
            thread::sleep(Duration::from_secs(3600));
        }
    }

    fn ask(&mut self, question: &str) -> Result<(), Failure> {
        paint::question(self.env.out, question)?;
        self.worker(&[
            "escalate".into(),
            "--reason".into(),
            format!("question: {question}"),
        ]);
        let mut answer = String::new();
        let read =
            self.env.input.read_line(&mut answer).map_err(|e| {
                Failure::new(1, format!("cannot read the answer to `{question}`: {e}"))
            })?;
        if read == 0 {
            return Err(Failure::new(
                1,
                format!(
                    "input closed before an answer to `{question}` came; \
                     answer by typing into the agent's terminal"
                ),
            ));
        }
        let answer = answer.trim_end_matches(['\n', '\r']);
        self.say(&format!("got answer: {BOLD}{answer}{RESET}"))?;
        let path = format!("answers/{}.txt", self.env.task);
        files::append(&self.env.worktree, &path, answer).map_err(|m| Failure::new(2, m))?;
        Ok(())
    }

    fn default_edit(&mut self) -> Result<(), Failure> {
        let path = files::default_edit_path(&self.env.task);
        let title = directive::first_prose_line(&self.env.prompt);
        let content = files::default_edit_content(&self.env.task, title.as_deref());
        paint::progress(self.env.out, 3, self.step_delay)?;
        files::write(&self.env.worktree, &path, &content).map_err(|m| Failure::new(2, m))?;
        self.say(&format!("{DIM}✎ wrote{RESET} {path}"))?;
        Ok(())
    }
}
