//! Helpers shared by the integration tests: run the `kvbm` binary.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `kvbm` with these arguments.
pub fn kvbm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvbm"))
        .args(args)
        .output()
        .expect("run kvbm")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh temporary directory for one test.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kvbm-cli-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
