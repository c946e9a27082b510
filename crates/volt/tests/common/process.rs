//! The `volt` binary run as a child process, for tests that measure it from outside (its
//! memory) or signal it (SIGTERM).

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long the binary may take to start its embedded PostgreSQL and listen.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `volt` process with its own storage directory and embedded PostgreSQL.
pub struct VoltProcess {
    pub child: Child,
    pub base_url: String,
    pub database_url: String,
    /// Log lines not yet read, for tests that wait for one.
    pub log: mpsc::UnboundedReceiver<String>,
    _storage: tempfile::TempDir,
}

impl VoltProcess {
    /// Starts the binary on a free loopback port with `extra_args`, and waits until it logs its
    /// database URL and its listening address.
    pub async fn start(extra_args: &[&str]) -> VoltProcess {
        let storage = tempfile::Builder::new().prefix("volt-process-").tempdir_in("/tmp").expect("temporary directory");
        // As root, the embedded PostgreSQL runs as `postgres`, which must reach the directory.
        std::fs::set_permissions(storage.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut command = Command::new(env!("CARGO_BIN_EXE_volt"));
        command
            .args(["--storage-dir", storage.path().to_str().expect("UTF-8 path"), "--port", "0", "--listen-address", "127.0.0.1"])
            .args(extra_args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the volt binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (sender, mut log) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if std::env::var_os("VOLT_TEST_LOG").is_some() {
                    eprintln!("[volt] {line}");
                }
                let _ = sender.send(line);
            }
        });

        let mut database_url = None;
        let mut base_url = None;
        let startup = async {
            while database_url.is_none() || base_url.is_none() {
                let line = log.recv().await.expect("volt exited during start-up");
                if let Some(url) = line.split("embedded PostgreSQL ready at ").nth(1) {
                    database_url = Some(url.trim().to_owned());
                }
                if let Some(url) = line.split("listening on ").nth(1) {
                    base_url = Some(url.trim().to_owned());
                }
            }
        };
        tokio::time::timeout(STARTUP_TIMEOUT, startup).await.expect("volt starts in time");
        VoltProcess {
            child,
            base_url: base_url.expect("listening address"),
            database_url: database_url.expect("database URL"),
            log,
            _storage: storage,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("volt is running")
    }

    /// Opens a new connection to the embedded PostgreSQL.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(connection);
        client
    }

    /// Reads a field of `/proc/<pid>/status` given in kB, such as `VmRSS` or `VmHWM`, in bytes.
    pub fn memory_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("process status");
        let line = status.lines().find(|line| line.starts_with(&format!("{field}:"))).expect("status field");
        let kilobytes: u64 = line.split_whitespace().nth(1).and_then(|value| value.parse().ok()).expect("a number of kB");
        kilobytes * 1024
    }

    /// Sends SIGTERM to the process.
    pub fn terminate(&self) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: kill has no memory effects; the pid is our own child, which has not been
        // reaped yet because `child` still owns it.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM to volt");
    }

    /// Sends SIGTERM and waits for the exit, returning its status.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        self.terminate();
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("volt exits within 60 s of SIGTERM")
            .expect("exit status")
    }
}

/// Raises this process's soft open-file limit to the hard limit, for tests that hold many
/// connections at once.
pub fn raise_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
