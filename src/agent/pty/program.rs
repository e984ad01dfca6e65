//! Resolving an agent's program before spawning: a failed exec inside portable-pty is reported
//! as a successful spawn (wezterm#7742), so every reason exec would fail is found here first.

use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{SpawnError, err};

/// Finds the program the way exec will, and checks it can run: a failed exec inside portable-pty
/// is not reported as an error (wezterm#7742), so every such failure must be caught here.
/// Where `name` would be found when an agent is started in `cwd` (PATH search, executable,
/// a `#!` interpreter that exists), or why it would not: for `plan validate` and `doctor`.
pub fn find_program(name: &str, cwd: &Path) -> Result<PathBuf, SpawnError> {
    resolve_program(name, cwd, std::env::var_os("PATH").as_deref(), true)
}

pub(super) fn resolve_program(
    name: &str,
    cwd: &Path,
    path_var: Option<&std::ffi::OsStr>,
    check_shebang: bool,
) -> Result<PathBuf, SpawnError> {
    if name.is_empty() {
        return Err(err(
            "agent program name is empty; fix the agent profile's command".into(),
        ));
    }
    let found = if name.contains('/') {
        let p = cwd.join(name);
        check_runnable(&p)?;
        p
    } else {
        let mut notes = Vec::new();
        let hit = std::env::split_paths(path_var.unwrap_or_default()).find_map(|dir| {
            let p = cwd.join(dir).join(name);
            match check_runnable(&p) {
                Ok(()) => Some(p),
                Err(e) => {
                    if p.exists() {
                        notes.push(e.0);
                    }
                    None
                }
            }
        });
        match hit {
            Some(p) => p,
            None => {
                let extra = if notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", notes.join("; "))
                };
                return Err(err(format!(
                    "program `{name}` not found in PATH{extra}; install it or put its full path in the agent profile's command"
                )));
            }
        }
    };
    if check_shebang {
        check_interpreter(&found, cwd, path_var)?;
    }
    Ok(found)
}

fn check_runnable(p: &Path) -> Result<(), SpawnError> {
    let meta = std::fs::metadata(p).map_err(|e| {
        err(format!(
            "agent program {} cannot be used: {e}; check the path",
            p.display()
        ))
    })?;
    if meta.is_dir() {
        return Err(err(format!(
            "agent program {} is a directory; point the command at a file",
            p.display()
        )));
    }
    let c = CString::new(p.as_os_str().as_bytes()).map_err(|_| {
        err(format!(
            "agent program path {} contains a NUL byte",
            p.display()
        ))
    })?;
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        return Err(err(format!(
            "agent program {} is not executable; run `chmod +x {}` or run it through its interpreter",
            p.display(),
            p.display()
        )));
    }
    Ok(())
}

/// For `#!` scripts, the interpreter must exist too (and for `#!/usr/bin/env prog`, `prog`).
fn check_interpreter(
    script: &Path,
    cwd: &Path,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<(), SpawnError> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let Some(line) = head[..n].strip_prefix(b"#!") else {
        return Ok(());
    };
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let Some(interp) = words.next() else {
        return Err(err(format!(
            "script {} has an empty `#!` line; name its interpreter",
            script.display()
        )));
    };
    let bad = |e: SpawnError| {
        err(format!(
            "script {} names interpreter `{interp}` on its `#!` line, which cannot run ({e}); fix the `#!` line or install the interpreter",
            script.display()
        ))
    };
    check_runnable(Path::new(interp)).map_err(bad)?;
    if Path::new(interp).file_name().is_some_and(|f| f == "env") {
        // `env -S prog args` or `env prog`: the first word that is not an option is the program.
        if let Some(prog) = words.find(|w| !w.starts_with('-')) {
            resolve_program(prog, cwd, path_var, false).map_err(bad)?;
        }
    }
    Ok(())
}
