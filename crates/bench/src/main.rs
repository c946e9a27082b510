//! `volt-bench`: measures Volt beside a reference tool on the same machine, in one run.

mod cluster;
mod durability;
mod edge;
mod routing;
mod sync;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Benchmarks Volt beside reference tools")]
struct Cli {
    #[command(subcommand)]
    command: Benchmark,
}

#[derive(Debug, Subcommand)]
enum Benchmark {
    /// Initial sync beside COPY TO STDOUT, and commit-to-client latency.
    Sync(sync::SyncArgs),
    /// Ingest with durability beside pg_recvlogical, memory of a large transaction, and
    /// start-up time with many shapes.
    Durability(durability::DurabilityArgs),
    /// Replication throughput with many shapes on one table, and the cost of clauses the
    /// routing index cannot serve.
    Routing(routing::RoutingArgs),
    /// HTTP edge: catch-up serving beside nginx, commit-to-client latency with many clients,
    /// and memory per parked long poll.
    Edge(edge::EdgeArgs),
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,volt::shape::snapshot=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match Cli::parse().command {
        Benchmark::Sync(args) => sync::run(args).await,
        Benchmark::Durability(args) => durability::run(args).await,
        Benchmark::Routing(args) => routing::run(args).await,
        Benchmark::Edge(args) => edge::run(args).await,
    }
}
