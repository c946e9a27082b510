//! The HTTP/1.1 server loop: accepts connections, serves them with bounded buffers, and shuts
//! down within a bounded time.
//!
//! hyper's connection buffer bounds both the request head it reads and the response bytes it
//! keeps queued for a client that is slow to read. It is sized from the request head limits,
//! so a connection never buffers much more than the largest request head Volt accepts.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Settings;

type Connection = hyper::server::conn::http1::Connection<TokioIo<tokio::net::TcpStream>, TowerToHyperService<Router>>;

/// Room in the connection buffer beyond the URL and header limits, for the request line, the
/// `: ` and line ends of each header, and the blank line that ends the head.
const HEAD_FRAMING_BYTES: usize = 4096;
/// hyper's smallest allowed connection buffer.
const BUFFER_BYTES_MIN: usize = 8192;
/// Pause after a failed accept, such as when the process is out of file descriptors, so that
/// the loop does not spin while the condition lasts.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Returns the size of each connection's read and write buffer: large enough for any request
/// head within the limits, so that Volt's own checks reject those with a JSON body. A head
/// larger than this gets hyper's bare 431.
pub fn connection_buffer_bytes(config: &Settings) -> usize {
    (config.request_url_bytes_max + config.request_header_bytes_max + HEAD_FRAMING_BYTES).max(BUFFER_BYTES_MIN)
}

/// Serves `app` on `listener` until `shutdown` turns true. Then it stops accepting, closes idle
/// connections, lets responses in progress finish for up to `config.shutdown_timeout`, and
/// closes the connections still open after that.
pub async fn serve(listener: TcpListener, app: Router, config: &Settings, mut shutdown: watch::Receiver<bool>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.max_buf_size(connection_buffer_bytes(config));
    builder.max_headers(config.request_headers_max);
    let mut connections = JoinSet::new();
    let connection_shutdown = shutdown.clone();

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
                    connections.spawn(serve_connection(connection, connection_shutdown.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);

    let open = connections.len();
    let drained = tokio::time::timeout(config.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            open_at_shutdown = open,
            still_open = connections.len(),
            timeout_ms = config.shutdown_timeout.as_millis() as u64,
            "closing connections whose responses did not finish within the shutdown timeout"
        );
        connections.shutdown().await;
    }
}

/// Serves one connection. On shutdown it lets the response in progress finish and then
/// closes the connection instead of waiting for another request.
async fn serve_connection(connection: Connection, mut shutdown: watch::Receiver<bool>) {
    tokio::pin!(connection);
    let finished = tokio::select! {
        result = connection.as_mut() => Some(result),
        _ = stopped(&mut shutdown) => None,
    };
    let result = match finished {
        Some(result) => result,
        None => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Waits until `shutdown` turns true, or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
