//! What an installed user has besides the binary, through the real binary: `--version`, shell
//! completions that the shells themselves accept, a man page, and `config --defaults` printing
//! exactly config.example.toml.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run orch-tui");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `shell -n` (parse only) on `script`; None when that shell is not installed.
fn parses(shell: &str, script: &str) -> Option<bool> {
    let mut child = Command::new(shell)
        .arg("-n")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(script.as_bytes()).ok()?;
    Some(child.wait().ok()?.success())
}

#[test]
fn version_is_the_package_version() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("orch-tui {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn config_defaults_is_the_example_file_byte_for_byte() {
    let (code, out, err) = run(&["config", "--defaults"]);
    assert_eq!(code, 0, "{err}");
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .unwrap();
    assert_eq!(out, file);
    let (code, _, err) = run(&["config"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--defaults"), "{err}");
}

#[test]
fn completions_name_every_command_and_parse_in_their_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for sub in [
            "add",
            "edit",
            "pr",
            "shell",
            "completions",
            "man",
            "approve",
        ] {
            assert!(script.contains(sub), "{shell} script lacks `{sub}`");
        }
        if shell != "fish" {
            match parses(shell, &script) {
                Some(ok) => assert!(ok, "{shell} -n refuses the script"),
                None => eprintln!("{shell} is not installed: its script was not parsed"),
            }
        }
    }
    let (code, _, err) = run(&["completions", "powershell-ish"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_man_page_documents_the_commands() {
    let (code, page, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(page.contains(".TH orch-tui 1"), "{page}");
    for sub in ["add", "edit", "run", "pr", "shell"] {
        assert!(page.contains(&format!("orch\\-tui\\-{sub}(1)")), "{sub}");
    }
    // Every page those references name, written into a man1/ folder.
    let dir = tempfile::tempdir().unwrap();
    let (code, said, err) = run(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for sub in ["add", "edit", "run", "pr", "shell", "completions"] {
        let file = dir.path().join(format!("orch-tui-{sub}.1"));
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            text.contains(&format!(".TH orch-tui-{sub} 1")),
            "{}: {text}",
            file.display()
        );
        assert!(said.contains(&file.display().to_string()), "{said}");
    }
    let add = std::fs::read_to_string(dir.path().join("orch-tui-add.1")).unwrap();
    assert!(add.contains("\\-\\-after"), "{add}");
}
