//! The fsmonitor hook command git runs for our calls (`super` is `src/git/watch.rs`).

use std::path::Path;

use super::ALL;

/// The longest hook command with its answers inline (git passes it in an argument and in the
/// environment of the user's hooks).
const MAX_INLINE: usize = 16 * 1024;
/// The hook with the answers in the command itself: `sh` runs `printf`, a builtin, so no file is
/// read and no `cat` started (about half the hook's CPU). The `tokens` given (the index's, the
/// new one) get their answers, any other "everything". None (use the files) when an answer
/// holds bytes other than plain printable ASCII, a quote, `\` or `%`, or the command would be
/// long.
pub(super) fn inline_hook(
    tokens: &[Option<String>],
    answers: &[(String, Vec<u8>)],
    everything: &[u8],
) -> Option<String> {
    let mut cmd = String::from("case $2 in ");
    let mut done = Vec::new();
    for tok in tokens.iter().flatten() {
        if done.contains(&tok) {
            continue;
        }
        done.push(tok);
        if let Some((_, body)) = answers.iter().find(|(t, _)| t == tok) {
            cmd.push_str(&format!("{tok}) printf '{}' ;; ", printf_format(body)?));
        }
    }
    cmd.push_str(&format!(
        "*) printf '{}' ;; esac; :",
        printf_format(everything)?
    ));
    (cmd.len() <= MAX_INLINE).then_some(cmd)
}

/// `body` as a `printf` format in single quotes: NUL as `\000`, nothing else escaped.
fn printf_format(body: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(body.len() + 16);
    for &b in body {
        match b {
            0 => out.push_str("\\000"),
            b'\'' | b'\\' | b'%' => return None,
            0x20..=0x7e => out.push(char::from(b)),
            _ => return None,
        }
    }
    Some(out)
}

/// The fsmonitor hook git runs (through `sh -c`, with the version and the index's token as
/// `$1 $2`): prints the answer file for that token, or the one for unknown tokens. Tokens we
/// issue are `[0-9a-z]+`; anything else (another monitor's, an empty one) is unknown. The last
/// `:` takes the arguments git appends.
pub(super) fn hook_command(dir: &Path) -> Option<String> {
    let d = dir.to_str()?.replace('\'', r"'\''");
    Some(format!(
        "d='{d}'; case $2 in ''|*[!0-9a-z]*) f=\"$d/{ALL}\" ;; *) f=\"$d/$2\" ;; esac; \
         [ -f \"$f\" ] || f=\"$d/{ALL}\"; [ -f \"$f\" ] && exec cat \"$f\"; \
         printf 'none\\000/\\000'; :"
    ))
}
