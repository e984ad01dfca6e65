//! What an installed user needs besides the binary: shell completions, a man page, and the
//! annotated defaults of the config (the same text as `config.example.toml`, embedded).

use std::io::Write;

use clap::CommandFactory;

use super::{CliError, CliResult, EXIT_OK};
use crate::os::out;

/// `config.example.toml`, embedded: every option at its default, explained.
pub const ANNOTATED_DEFAULTS: &str = include_str!("../../config.example.toml");

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `orch-tui completions SHELL`: the completion script on stdout.
pub fn completions(shell: Shell) -> CliResult {
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    let name = cmd.get_name().to_string();
    match shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, &mut buf)
        }
        Shell::Zsh => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, &mut buf),
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, &mut buf)
        }
    }
    raw(&buf)
}

/// `orch-tui man`: the man page (roff) on stdout, for `man -l -`; with `dir`, that page and
/// one per subcommand (`orch-tui-add.1`, ...) written there, for a `man1/` folder.
pub fn man(dir: Option<&std::path::Path>) -> CliResult {
    let cmd = super::Cli::command();
    let Some(dir) = dir else {
        return raw(&render(clap_mangen::Man::new(cmd))?);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::bad_input(format!("cannot create {}: {e}", dir.display())))?;
    let mut pages = vec![(
        cmd.get_name().to_string(),
        clap_mangen::Man::new(cmd.clone()),
    )];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // Each page is titled as the man page that the main one refers to: `orch-tui-add`.
        let name = format!("{}-{}", cmd.get_name(), sub.get_name());
        pages.push((name.clone(), clap_mangen::Man::new(sub.clone()).title(name)));
    }
    for (name, page) in pages {
        let file = dir.join(format!("{name}.1"));
        std::fs::write(&file, render(page)?)
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", file.display())))?;
        out::say(&file.display().to_string());
    }
    Ok(EXIT_OK)
}

fn render(page: clap_mangen::Man) -> Result<Vec<u8>, CliError> {
    let mut buf = Vec::new();
    page.render(&mut buf)
        .map_err(|e| CliError::failed(format!("cannot render the man page: {e}")))?;
    Ok(buf)
}

/// `orch-tui config --defaults`.
pub fn config_defaults() -> CliResult {
    out::print(ANNOTATED_DEFAULTS);
    Ok(EXIT_OK)
}

/// Bytes to stdout; a reader that went away (`| head`) ends it quietly.
fn raw(bytes: &[u8]) -> CliResult {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|_| stdout.flush()) {
        Ok(()) => Ok(EXIT_OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
        Err(e) => Err(CliError::failed(format!("cannot write to stdout: {e}"))),
    }
}
