//! The built-in simulated agent (`orch-tui sim-agent`, docs/sim-agent.md): it reports through
//! `orch-tui worker ...` itself, so its output needs no parsing.

use super::{AgentKind, EventParser, ParserOptions, Silent};
use crate::core::config::Adapter;

pub struct Sim;

impl AgentKind for Sim {
    fn adapter(&self) -> Adapter {
        Adapter::Sim
    }

    fn parser(&self, _: ParserOptions) -> Box<dyn EventParser> {
        Box::new(Silent)
    }

    fn screen_rules(&self) -> &'static str {
        include_str!("../../../assets/screen-rules/generic.toml")
    }
}
