//! What the tests that run the real agent CLIs interactively under the real supervisor share:
//! a repository whose config points a profile at the pinned CLI (its own `interactive` argv
//! when given), a one-task plan, and what the user sees of it (`status --json` inbox items,
//! `events --json`).
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use crate::agent_support::{AgentHome, Cli, MockServer};
use crate::e2e_support::{Repo, wait_for};
use orch_tui::core::config::default_config;
use serde_json::Value;

pub const LIMIT: Duration = Duration::from_secs(90);

pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

/// `cli` as an interactive profile (`interactive` argv: its own, when given): both argvs point
/// at the pinned CLI.
pub fn config(
    cli: Cli,
    bin: &Path,
    env: &[(String, String)],
    interactive: &[&str],
    extra: &str,
) -> String {
    let name = cli.program();
    let mut p = default_config().agents[name].clone();
    if !interactive.is_empty() {
        p.interactive = interactive.iter().map(|s| s.to_string()).collect();
    }
    let argv = |v: &[String]| -> String {
        let mut v = v.to_vec();
        v[0] = bin.join(name).to_string_lossy().into_owned();
        v.iter().map(|a| toml_str(a)).collect::<Vec<_>>().join(", ")
    };
    let env: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k} = {}", toml_str(v)))
        .collect();
    format!(
        "stop_grace = \"500ms\"\ndefault_agent = \"{name}\"\n\n[funnel]\nautonomy = \"out-of-the-loop\"\n\n\
         [agents.{name}]\nmode = \"interactive\"\ncommand = [{}]\ninteractive = [{}]\nenv = {{ {} }}\n\n{extra}",
        argv(&p.command),
        argv(&p.interactive),
        env.join(", ")
    )
}

pub fn plan(prompt: &str) -> String {
    format!(
        "[plan]\nname = \"interactive\"\n\n[[task]]\nid = \"t\"\ntitle = \"t\"\nprompt = {}\n",
        toml_str(prompt)
    )
}

pub struct Rig {
    pub cli: Cli,
    pub repo: Repo,
    pub home: AgentHome,
    pub mock: MockServer,
    pub bin: std::path::PathBuf,
    pub interactive: Vec<&'static str>,
}

pub fn rig(bin: &Path) -> Rig {
    Rig {
        cli: Cli::Claude,
        repo: Repo::new(),
        home: AgentHome::new(&[], true),
        mock: MockServer::start("mock_anthropic.py"),
        bin: bin.to_path_buf(),
        interactive: Vec::new(),
    }
}

impl Rig {
    pub fn start(&self, extra: &str, prompt: &str) -> crate::e2e_support::Running {
        if self.cli == Cli::Codex {
            self.home.use_openai_mock(&self.mock);
        }
        let env = self.home.env(self.cli, &self.bin, &self.mock);
        self.repo
            .init(&config(self.cli, &self.bin, &env, &self.interactive, extra));
        let p = self.repo.write_plan(&plan(prompt));
        self.repo
            .spawn(&["run", "--headless", "--plan", p.to_str().expect("utf-8")])
    }

    /// The first inbox item of task `t` whose JSON contains `needle` (e.g. its kind), within
    /// [`LIMIT`].
    pub fn inbox_item(&self, needle: &str) -> Value {
        wait_for(LIMIT, || {
            let s = self.repo.status();
            s["inbox"]
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .find(|i| i["task"] == "t" && i.to_string().contains(needle))
                        .cloned()
                })
                .ok_or(s)
        })
        .unwrap_or_else(|s| {
            let logs = self.repo.dir.join(".orch/logs/t/1");
            let read = |f: &str| std::fs::read_to_string(logs.join(f)).unwrap_or_default();
            let screen = read("screen.log");
            let tail: String = screen.chars().rev().take(3000).collect::<Vec<_>>().into_iter().rev().collect();
            panic!(
                "no inbox item with {needle:?} within {LIMIT:?}: {s:#}\n--- hooks ---\n{}\n--- screen ---\n{tail}",
                read("hooks.jsonl")
            )
        })
    }

    pub fn events(&self, kind: &str) -> Vec<Value> {
        let out = self.repo.orch(
            &["events", "--json", "--task", "t"],
            Duration::from_secs(30),
        );
        out.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["kind"] == kind)
            .collect()
    }
}
