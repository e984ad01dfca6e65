//! Any command: orch-tui knows nothing of its output; its exit code says done (0) or failed,
//! and it may report with `orch-tui worker ...`.

use super::{AgentKind, EventParser, ParserOptions, Silent};
use crate::core::config::Adapter;

pub struct Generic;

impl AgentKind for Generic {
    fn adapter(&self) -> Adapter {
        Adapter::Generic
    }

    fn parser(&self, _: ParserOptions) -> Box<dyn EventParser> {
        Box::new(Silent)
    }

    fn screen_rules(&self) -> &'static str {
        include_str!("../../../assets/screen-rules/generic.toml")
    }
}
