//! A spare holder's prepared files (`agent::holder::spare`), in a test process of their own:
//! `prepare` binds its socket under a narrowed umask, which is process-wide and would race
//! with other unit tests creating files.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use orch_tui::agent::holder::spare::{leftovers, prepare};
use orch_tui::agent::record::{CAST_LOG, RAW_LOG, TEXT_LOG};

fn ino(p: &Path) -> u64 {
    std::fs::symlink_metadata(p).unwrap().ino()
}

#[test]
fn every_prepared_file_is_renamed_into_place_and_the_folder_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("holders");
    orch_tui::os::files::private_dir(&dir).unwrap();
    // stderr of the test process is redirected by `prepare`: keep it and put it back.
    let saved = unsafe { libc::dup(2) };
    let mut p = prepare(&dir).unwrap();
    let root = dir.join(format!("spare-{}", std::process::id()));
    assert!(
        leftovers(&dir).is_empty(),
        "a live spare's folder is no leftover"
    );
    let dead = dir.join("spare-99999999");
    std::fs::create_dir(&dead).unwrap();
    assert_eq!(leftovers(&dir), vec![dead.clone()]);
    std::fs::remove_dir(&dead).unwrap();
    let before = [
        ino(&root.join("hold.log")),
        ino(&root.join("branches")),
        ino(&root.join("sock")),
        ino(&root.join("logs").join(RAW_LOG)),
        ino(&root.join("task")),
    ];
    std::fs::create_dir(tmp.path().join("logs")).unwrap();
    let logs = tmp.path().join("logs/task/1");
    assert!(p.log_to(&dir.join("7.log")));
    assert!(p.branches_to(&dir.join("7.branches"), b"[\"main\"]"));
    let prompt_ino = ino(&root.join("prompt"));
    assert!(p.prompt_to(&orch_tui::agent::PromptFile {
        path: tmp.path().join("7.md"),
        text: "do it".into(),
    }));
    assert_eq!(ino(&tmp.path().join("7.md")), prompt_ino);
    assert_eq!(std::fs::read(tmp.path().join("7.md")).unwrap(), b"do it");
    let listener = p.socket_to(&dir.join("7.sock")).unwrap();
    assert!(p.logs_to(&logs));
    drop(p);
    unsafe { libc::dup2(saved, 2) };
    let after = [
        ino(&dir.join("7.log")),
        ino(&dir.join("7.branches")),
        ino(&dir.join("7.sock")),
        ino(&logs.join(RAW_LOG)),
        ino(&tmp.path().join("logs/task")),
    ];
    assert_eq!(before, after, "the same files, renamed");
    assert!(!root.exists() && leftovers(&dir).is_empty());
    assert_eq!(
        std::fs::read(dir.join("7.branches")).unwrap(),
        b"[\"main\"]"
    );
    for f in [CAST_LOG, TEXT_LOG] {
        assert_eq!(std::fs::metadata(logs.join(f)).unwrap().len(), 0);
    }
    assert_eq!(
        orch_tui::os::files::mode_of(&logs.join(RAW_LOG)).unwrap() & 0o777,
        0o600
    );
    // The renamed socket still takes connections.
    std::os::unix::net::UnixStream::connect(dir.join("7.sock")).unwrap();
    drop(listener);
}

#[test]
fn a_log_folder_that_has_files_is_left_alone_and_the_spare_folder_still_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("holders");
    let saved = unsafe { libc::dup(2) };
    let p = prepare(&dir).unwrap();
    unsafe { libc::dup2(saved, 2) };
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join(RAW_LOG), b"an earlier attempt").unwrap();
    assert!(!p.logs_to(&logs));
    drop(p);
    assert!(leftovers(&dir).is_empty());
    assert_eq!(
        std::fs::read(logs.join(RAW_LOG)).unwrap(),
        b"an earlier attempt"
    );
}
