//! nginx serving a directory of static files on 127.0.0.1, with its own configuration and
//! logs in a temporary directory: the reference for serving bytes over HTTP.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::http1::Connection;

/// Path of the nginx binary when `--nginx` is not given (the Debian package's path).
pub const DEFAULT_BINARY: &str = "/usr/sbin/nginx";

/// A running nginx master process and its workers.
pub struct Nginx {
    child: Child,
    pub address: SocketAddr,
}

impl Nginx {
    /// Starts nginx serving `root` on `address`, with as many worker processes as cores.
    /// `dir` contains the configuration, the logs and the temporary paths.
    pub async fn start(binary: &Path, dir: &Path, root: &Path, address: SocketAddr) -> Nginx {
        let temp = dir.join("temp");
        std::fs::create_dir_all(&temp).expect("creating nginx's temporary directory");
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config(dir, &temp, root, address)).expect("writing nginx.conf");
        let log = std::fs::File::create(dir.join("stderr.log")).expect("creating nginx's log");
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&config_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("starting {}: {error} (install nginx with `apt-get install nginx`, or pass --nginx)", binary.display())
            });
        let mut nginx = Nginx { child, address };
        nginx.wait_ready(dir).await;
        nginx
    }

    async fn wait_ready(&mut self, dir: &Path) {
        for _ in 0..1_000 {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited with {status}: {log}");
            }
            if Connection::open(self.address).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("nginx did not listen on {} within 10 s", self.address);
    }

    /// Stops nginx with SIGQUIT (graceful shutdown) and waits for the master to exit.
    pub fn stop(&mut self) {
        // SAFETY: kill has no memory effects; the pid is our own child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGQUIT) };
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Builds a configuration for serving `root` as fast as nginx serves static files: sendfile,
/// no access log, and keep-alive connections that are never closed for their request count.
fn config(dir: &Path, temp: &Path, root: &Path, address: SocketAddr) -> String {
    format!(
        "daemon off;
master_process on;
worker_processes auto;
pid {pid};
error_log {error_log} warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    types {{
        application/json json;
    }}
    default_type application/octet-stream;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen {address};
        root {root};
    }}
}}
",
        pid = dir.join("nginx.pid").display(),
        error_log = dir.join("error.log").display(),
        temp = temp.display(),
        root = root.display(),
    )
}
