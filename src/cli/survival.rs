//! `doctor`'s rows on what a run survives here: a closed terminal or a dropped SSH connection
//! (always: SIGHUP never ends a supervisor, and `run --detach` needs no terminal at all), a
//! logout (only when systemd-logind does not kill the user's processes), a reboot (never: the
//! next `orch-tui run` recovers the attempts, and real agents continue their conversation).

use std::process::{Command, Stdio};

use super::doctor::{Row, Status};

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            what: "survives a closed terminal".into(),
            status: Status::Ok,
            detail: "yes: a closed window or dropped SSH connection leaves the run going \
                     (`orch-tui run --detach` runs without a terminal; a TUI that loses its \
                     terminal supervises on headless); `orch-tui` watches it again"
                .into(),
        },
        logout_row(kill_user_processes()),
        Row {
            what: "survives a reboot".into(),
            status: Status::Note,
            detail: "no: agents end with the machine; the next `orch-tui run` recovers their \
                     attempts, and Claude or Codex continue their conversation where the attempt \
                     recorded its session"
                .into(),
        },
    ]
}

/// Where the answer came from, and the answer: does logind kill a user's processes at logout?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillSetting {
    /// `loginctl show-user` answered (the running logind's setting).
    Logind(bool),
    /// `/etc/systemd/logind.conf` says so (or leaves systemd's default, no); logind may not run.
    Config(bool),
    /// Neither: no systemd-logind here.
    Unknown,
}

fn kill_user_processes() -> KillSetting {
    let uid = {
        // SAFETY: getuid cannot fail and touches no memory.
        unsafe { libc::getuid() }
    };
    let asked = Command::new("loginctl")
        .args([
            "show-user",
            &uid.to_string(),
            "--property=KillUserProcesses",
            "--value",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    if let Ok(o) = asked
        && o.status.success()
    {
        match String::from_utf8_lossy(&o.stdout).trim() {
            "yes" => return KillSetting::Logind(true),
            "no" => return KillSetting::Logind(false),
            _ => {}
        }
    }
    match std::fs::read_to_string("/etc/systemd/logind.conf") {
        Ok(text) => KillSetting::Config(config_kills(&text)),
        Err(_) => KillSetting::Unknown,
    }
}

/// `KillUserProcesses=` of a logind.conf (the last uncommented one wins; systemd's default is no).
fn config_kills(text: &str) -> bool {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("KillUserProcesses="))
        .is_some_and(|v| matches!(v.trim(), "yes" | "true" | "1" | "on"))
}

pub fn logout_row(setting: KillSetting) -> Row {
    let what = "survives a logout".to_string();
    let kills = |from: &str| Row {
        what: what.clone(),
        status: Status::Note,
        detail: format!(
            "no: {from} has KillUserProcesses=yes, so a logout ends the supervisor and its \
             agents (the next `orch-tui run` recovers them); stay logged in, or start it with \
             `systemd-run --user --scope orch-tui run --detach` after `loginctl enable-linger`"
        ),
    };
    match setting {
        KillSetting::Logind(true) => kills("systemd-logind"),
        KillSetting::Config(true) => kills("/etc/systemd/logind.conf"),
        KillSetting::Logind(false) | KillSetting::Config(false) => Row {
            what,
            status: Status::Ok,
            detail: "yes: systemd-logind leaves a user's processes running at logout \
                     (KillUserProcesses=no)"
                .into(),
        },
        KillSetting::Unknown => Row {
            what,
            status: Status::Note,
            detail: "probably: no systemd-logind here to end a user's processes at logout".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_says_whether_a_logout_kills() {
        assert!(!config_kills("#KillUserProcesses=yes\n"), "commented out");
        assert!(!config_kills("[Login]\n"), "systemd's default");
        assert!(config_kills("[Login]\nKillUserProcesses=yes\n"));
        assert!(!config_kills(
            "KillUserProcesses=yes\nKillUserProcesses=no\n"
        ));
    }

    #[test]
    fn a_logout_that_kills_says_what_to_do() {
        let r = logout_row(KillSetting::Logind(true));
        assert_eq!(r.status, Status::Note);
        assert!(r.detail.contains("KillUserProcesses=yes"), "{}", r.detail);
        assert!(r.detail.contains("enable-linger"), "{}", r.detail);
        assert_eq!(logout_row(KillSetting::Config(false)).status, Status::Ok);
    }
}
