//! The middle layer of detection: what the terminal stream says besides the screen's text — a
//! title change, a desktop notification (OSC 9 / OSC 777), the bell. The PTY reader reports
//! each as a fact; the adapter's rules with `on = "title" | "notification" | "bell"` (same
//! files, same config overrides as screen rules) map it to a state. A signal is a discrete
//! fact, not a redrawing screen: it counts at once, no debounce.

use super::{Layer, ScreenMatch, ScreenRule, ScreenState};

/// A fact the terminal stream carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Bell,
    /// An OSC 9 or OSC 777 notification's text.
    Notification(String),
    /// The window title the agent set (OSC 0 or 2).
    Title(String),
}

impl Signal {
    fn layer(&self) -> Layer {
        match self {
            Signal::Bell => Layer::Bell,
            Signal::Notification(_) => Layer::Osc,
            Signal::Title(_) => Layer::Title,
        }
    }

    fn text(&self) -> &str {
        match self {
            Signal::Bell => "",
            Signal::Notification(t) | Signal::Title(t) => t,
        }
    }
}

/// The first rule of the signal's layer that matches it while the agent's last known state is
/// `now`. A title or notification matches on its text (`any`, `all`, `none`); a bell rule on
/// `when` alone.
pub fn classify_signal(
    rules: &[ScreenRule],
    signal: &Signal,
    now: Option<ScreenState>,
) -> Option<ScreenMatch> {
    let layer = signal.layer();
    let text = signal.text();
    rules
        .iter()
        .filter(|r| !r.disabled && r.on == layer)
        .filter(|r| r.when.is_none() || r.when == now)
        .find(|r| {
            !r.none.iter().any(|n| text.contains(n.as_str()))
                && r.all.iter().all(|a| text.contains(a.as_str()))
                && (r.any.is_empty() || r.any.iter().any(|a| text.contains(a.as_str())))
        })
        .map(|r| ScreenMatch {
            state: r.state,
            rule: r.name.clone(),
            excerpt: match signal {
                Signal::Bell => "(bell)".to_string(),
                _ => text.trim().to_string(),
            },
            layer,
            call: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::screen_rules::{WaitingFor, builtin};

    #[test]
    fn claudes_title_says_idle_or_working() {
        let rules = builtin("claude");
        let rest = Signal::Title("✳ Fix the parser".into());
        // Its title as it starts, before any work: no turn ended.
        assert_eq!(classify_signal(&rules, &rest, None), None);
        let idle = classify_signal(&rules, &rest, Some(ScreenState::Working))
            .expect("the idle title after work is known");
        assert_eq!(idle.state, ScreenState::Idle);
        assert_eq!(idle.layer, Layer::Title);
        assert_eq!(idle.excerpt, "✳ Fix the parser");
        // 2.1.328 draws ◐ and ◑ (tests/fixtures/casts/claude-titles.cast); earlier 2.1.x braille.
        for glyph in [
            "◐", "◑", "⠂", "⠐", "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏",
        ] {
            let m = classify_signal(&rules, &Signal::Title(format!("{glyph} Fix it")), None);
            assert_eq!(m.map(|m| m.state), Some(ScreenState::Working), "{glyph}");
        }
        assert_eq!(
            classify_signal(&rules, &Signal::Title("Claude Code".into()), None),
            None,
            "a plain title says nothing"
        );
    }

    #[test]
    fn a_permission_notification_waits_and_a_bell_counts_only_while_idle() {
        let rules = builtin("claude");
        let n = Signal::Notification("Claude needs your permission to use Bash".into());
        let m = classify_signal(&rules, &n, Some(ScreenState::Working)).unwrap();
        assert_eq!(m.state, ScreenState::Waiting(WaitingFor::Permission));
        assert_eq!(m.layer, Layer::Osc);
        // Claude's "waiting for your input" comes a minute into an idle prompt: the turn's end
        // is already known (its Stop hook, the idle title), and it asks nothing new.
        let idle = Signal::Notification("Claude is waiting for your input".into());
        assert_eq!(
            classify_signal(&rules, &idle, Some(ScreenState::Idle)),
            None
        );
        assert_eq!(
            classify_signal(&rules, &Signal::Bell, Some(ScreenState::Working)),
            None,
            "a bell while working is no wait"
        );
        let bell = classify_signal(&rules, &Signal::Bell, Some(ScreenState::Idle)).unwrap();
        assert_eq!(bell.state, ScreenState::Waiting(WaitingFor::Question));
        assert_eq!(bell.layer, Layer::Bell);
    }

    #[test]
    fn codexs_approval_notification_asks_permission() {
        let rules = builtin("codex");
        let n = Signal::Notification("Approval requested: cargo test".into());
        let m = classify_signal(&rules, &n, Some(ScreenState::Working)).unwrap();
        assert_eq!(m.state, ScreenState::Waiting(WaitingFor::Permission));
        assert_eq!(m.rule, "codex-osc-approval");
    }
}
