//! A panic on the supervisor's thread must not vanish: its message is logged, kept for whoever
//! ends the run (the TUI prints it after the terminal is restored; on the alternate screen it
//! would be lost), and the run stops its agents.

use std::panic::PanicHookInfo;
use std::sync::Mutex;

static LAST: Mutex<Option<String>> = Mutex::new(None);

/// "message (at file:line)" of a panic.
pub fn describe(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    match info.location() {
        Some(l) => format!("{msg} (at {}:{})", l.file(), l.line()),
        None => msg,
    }
}

/// Keep and log a panic (called from a panic hook).
pub fn record(info: &PanicHookInfo<'_>) {
    let text = describe(info);
    let thread = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string();
    tracing::error!(thread = %thread, "panic: {text}");
    if let Ok(mut last) = LAST.lock() {
        *last = Some(format!("{text} [thread {thread}]"));
    }
}

/// The last panic recorded, if any.
pub fn last() -> Option<String> {
    LAST.lock().ok().and_then(|l| l.clone())
}

/// Record every panic, then do what the hook before did (print it, for a headless run).
pub fn install() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        record(info);
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_kept_with_where_it_happened() {
        install();
        let r = std::thread::Builder::new()
            .name("engine".into())
            .spawn(|| panic!("the ledger said something impossible"))
            .unwrap()
            .join();
        assert!(r.is_err());
        let last = last().unwrap();
        assert!(
            last.contains("the ledger said something impossible")
                && last.contains("panics.rs")
                && last.contains("[thread engine]"),
            "{last}"
        );
    }
}
