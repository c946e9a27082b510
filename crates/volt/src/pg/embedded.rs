//! The embedded default: a private PostgreSQL server started from the machine's installed
//! server binaries when no `DATABASE_URL` is given.
//!
//! The cluster lives in `<storage dir>/postgres`, listens on 127.0.0.1 only (no Unix socket),
//! trusts local connections and runs with `wal_level=logical`. `initdb` and `postgres` refuse
//! to run as root, so when Volt runs as root they run as the `postgres` system user.

use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ConnectionSettings;

/// How long the server may take to accept connections after it was started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown may take before the server is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at starting when the chosen port was taken in the meantime.
const START_ATTEMPTS_MAX: u32 = 3;

/// Options for the embedded server.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedOptions {
    /// Cluster directory; created and initialised when missing.
    pub data_dir: PathBuf,
    /// Directory holding `initdb` and `postgres`; searched for when `None`.
    pub bin_dir: Option<PathBuf>,
    /// Extra `-c name=value` server settings, for example `fsync=off` in tests.
    pub extra_settings: Vec<(String, String)>,
    /// Skip initdb's final sync (tests only).
    pub initdb_no_sync: bool,
    /// Port to listen on; a free one is chosen when `None`.
    pub port: Option<u16>,
}

/// Error from starting the embedded server.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) were not found; install them \
         (Debian/Ubuntu: apt-get install postgresql), pass --pg-bin-dir, or set DATABASE_URL"
    )]
    BinariesNotFound,
    #[error(
        "--pg-bin-dir {0} does not contain initdb and postgres; name the bin directory of a \
         PostgreSQL server installation (Debian/Ubuntu: apt-get install postgresql)"
    )]
    BinDirInvalid(PathBuf),
    #[error(
        "Volt runs as root, and the embedded PostgreSQL must run as the 'postgres' system user, \
         which does not exist; create it or run Volt as another user"
    )]
    NoPostgresUser,
    #[error(
        "the 'postgres' user cannot reach {data_dir}, because {blocked} is not searchable by \
         other users; choose a --storage-dir it can reach (for example under /var/lib or /tmp)"
    )]
    Unreachable { data_dir: PathBuf, blocked: PathBuf },
    #[error("{step} failed: {detail}")]
    Step { step: &'static str, detail: String },
}

fn step_error(step: &'static str) -> impl Fn(io::Error) -> EmbeddedError {
    move |error| EmbeddedError::Step { step, detail: error.to_string() }
}

/// A running embedded server. Dropping it stops the server.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    child: Option<Child>,
    port: u16,
    data_dir: PathBuf,
}

impl EmbeddedPostgres {
    /// Initialises the cluster when needed, starts the server and waits until it accepts
    /// connections.
    pub async fn start(options: EmbeddedOptions) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir(options.bin_dir.as_deref())?;
        let owner = server_owner()?;
        prepare_data_dir(&options.data_dir, owner)?;
        stop_leftover_server(&options.data_dir).await;
        if !options.data_dir.join("PG_VERSION").exists() {
            run_initdb(&bin_dir, &options, owner)?;
        }

        let mut last_error = None;
        for _ in 0..START_ATTEMPTS_MAX {
            let port = match options.port {
                Some(port) => port,
                None => free_port().map_err(step_error("choosing a port"))?,
            };
            let child = spawn_server(&bin_dir, &options, owner, port)?;
            let mut server = EmbeddedPostgres { child: Some(child), port, data_dir: options.data_dir.clone() };
            match server.wait_until_ready().await {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// Returns a connection URL that `psql` and Volt accept.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    async fn wait_until_ready(&mut self) -> Result<(), EmbeddedError> {
        let settings = ConnectionSettings::parse(&self.url()).expect("the embedded URL is valid");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten()) {
                self.child = None;
                return Err(EmbeddedError::Step {
                    step: "starting postgres",
                    detail: format!("the server exited with {status}; see {}", self.log_path().display()),
                });
            }
            if super::connect(&settings).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(EmbeddedError::Step {
                    step: "starting postgres",
                    detail: format!("not ready after {STARTUP_TIMEOUT:?}; see {}", self.log_path().display()),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_path(&self) -> PathBuf {
        log_path(&self.data_dir)
    }

    /// Stops the server with a fast shutdown, killing it if that takes too long.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGINT requests a fast shutdown from the postmaster: end sessions, checkpoint, exit.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                tracing::info!("embedded PostgreSQL stopped");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!("embedded PostgreSQL did not stop within {SHUTDOWN_TIMEOUT:?}; killing it");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.with_extension("log")
}

/// Returns the user the server runs as: `None` for Volt's own user, or the `postgres`
/// system user's ids when Volt runs as root.
fn server_owner() -> Result<Option<(u32, u32)>, EmbeddedError> {
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = c"postgres";
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(EmbeddedError::NoPostgresUser);
    }
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some((uid, gid)))
}

fn find_bin_dir(explicit: Option<&Path>) -> Result<PathBuf, EmbeddedError> {
    let has_binaries = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = explicit {
        return if has_binaries(dir) { Ok(dir.to_owned()) } else { Err(EmbeddedError::BinDirInvalid(dir.to_owned())) };
    }

    // Debian and Ubuntu install each major version under /usr/lib/postgresql/<major>/bin;
    // prefer the newest.
    let mut candidates: Vec<(u32, PathBuf)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            if let Some(major) = entry.file_name().to_str().and_then(|name| name.parse().ok()) {
                candidates.push((major, entry.path().join("bin")));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0));
    let mut dirs: Vec<PathBuf> = candidates.into_iter().map(|(_, dir)| dir).collect();
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().find(|dir| has_binaries(dir)).ok_or(EmbeddedError::BinariesNotFound)
}

fn prepare_data_dir(data_dir: &Path, owner: Option<(u32, u32)>) -> Result<(), EmbeddedError> {
    fs::create_dir_all(data_dir).map_err(step_error("creating the data directory"))?;
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    let data_dir = fs::canonicalize(data_dir).map_err(step_error("resolving the data directory"))?;
    // Every ancestor must be searchable by the server's user for it to reach its data.
    for ancestor in data_dir.ancestors().skip(1) {
        let metadata = fs::metadata(ancestor).map_err(step_error("checking the data directory"))?;
        let mode = metadata.permissions().mode();
        let searchable = mode & 0o001 != 0
            || (metadata.uid() == uid && mode & 0o100 != 0)
            || (metadata.gid() == gid && mode & 0o010 != 0);
        if !searchable {
            return Err(EmbeddedError::Unreachable { data_dir: data_dir.clone(), blocked: ancestor.to_owned() });
        }
    }
    std::os::unix::fs::chown(&data_dir, Some(uid), Some(gid)).map_err(step_error("handing the data directory to postgres"))?;
    fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o700)).map_err(step_error("restricting the data directory"))?;
    Ok(())
}

fn run_initdb(bin_dir: &Path, options: &EmbeddedOptions, owner: Option<(u32, u32)>) -> Result<(), EmbeddedError> {
    let mut command = Command::new(bin_dir.join("initdb"));
    command
        .arg("-D")
        .arg(&options.data_dir)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
        .stdin(Stdio::null());
    if options.initdb_no_sync {
        command.arg("--no-sync");
    }
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    let output = command.output().map_err(step_error("running initdb"))?;
    if !output.status.success() {
        return Err(EmbeddedError::Step {
            step: "initdb",
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    tracing::info!(data_dir = %options.data_dir.display(), "initialised the embedded PostgreSQL cluster");
    Ok(())
}

fn spawn_server(bin_dir: &Path, options: &EmbeddedOptions, owner: Option<(u32, u32)>, port: u16) -> Result<Child, EmbeddedError> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(&options.data_dir))
        .map_err(step_error("opening the server log"))?;
    let log_for_stderr = log.try_clone().map_err(step_error("opening the server log"))?;

    let mut command = Command::new(bin_dir.join("postgres"));
    command.arg("-D").arg(&options.data_dir);
    let port_setting = port.to_string();
    let settings = [
        ("listen_addresses", "127.0.0.1"),
        ("port", port_setting.as_str()),
        ("unix_socket_directories", ""),
        ("wal_level", "logical"),
        ("max_wal_senders", "10"),
        ("max_replication_slots", "10"),
    ];
    for (name, value) in settings {
        command.arg("-c").arg(format!("{name}={value}"));
    }
    for (name, value) in &options.extra_settings {
        command.arg("-c").arg(format!("{name}={value}"));
    }
    // Its own process group: a Ctrl-C in Volt's terminal reaches Volt, which then stops the
    // server after its own connections are closed.
    command.stdin(Stdio::null()).stdout(log).stderr(log_for_stderr).process_group(0);
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command.spawn().map_err(step_error("starting postgres"))
}

/// Stops a server that a previous Volt process started on this data directory and left
/// running (for example because it was killed), so the new one can start.
async fn stop_leftover_server(data_dir: &Path) {
    let Ok(contents) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return;
    };
    let Some(pid) = contents.lines().next().and_then(|line| line.trim().parse::<libc::pid_t>().ok()) else {
        return;
    };
    let command_line = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if pid <= 0 || !String::from_utf8_lossy(&command_line).contains("postgres") {
        return;
    }
    tracing::warn!(pid, "a PostgreSQL server from an earlier run still uses the data directory; stopping it");
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
    while Instant::now() < deadline && unsafe { libc::kill(pid, 0) } == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
