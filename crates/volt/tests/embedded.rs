//! The `volt` binary's start-up errors: one clear line, no panic.

use std::process::Command;

#[test]
fn missing_server_binaries_name_the_package() {
    let storage = tempfile::Builder::new().prefix("volt-test-").tempdir_in("/tmp").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_volt"))
        .args(["--storage-dir", storage.path().to_str().unwrap(), "--pg-bin-dir", "/nonexistent", "--port", "0"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error_lines: Vec<&str> = stderr.lines().filter(|line| line.starts_with("volt:")).collect();
    assert_eq!(error_lines.len(), 1, "{stderr}");
    assert!(error_lines[0].contains("apt-get install postgresql"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn invalid_option_value_is_rejected() {
    let output = Command::new(env!("CARGO_BIN_EXE_volt")).args(["--long-poll-timeout-ms", "0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--long-poll-timeout-ms"));
}
