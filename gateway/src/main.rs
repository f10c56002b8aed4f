//! `xxfunc-gateway`: serve the xxfunc API.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::Parser;
use xxfunc_gateway::{
    DEFAULT_LISTEN, DEFAULT_SSE_SEND_TIMEOUT, DEFAULT_UPLOAD_GRACE, GatewayConfig, serve,
};
use xxfunc_store::{DEFAULT_MAX_MODULE_SIZE, StoreConfig};

/// The xxfunc gateway: module uploads, names, versions, desired states and the
/// change feed for runners, over HTTP.
#[derive(Debug, Parser)]
#[command(name = "xxfunc-gateway", version)]
struct Args {
    /// Address to listen on. Anything but loopback requires a token.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Directory for the registry (RocksDB).
    #[arg(long, env = "XXFUNC_DATA_DIR", default_value = "xxfunc-data")]
    data_dir: PathBuf,
    /// Module store URL: file:///abs/path, s3://bucket/prefix or memory://
    /// [default: file://<data-dir>/modules]
    #[arg(long, env = "XXFUNC_STORE")]
    store: Option<String>,
    /// Bearer token required on every mutating request.
    #[arg(long, env = "XXFUNC_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Bearer token required on reads as well (GET /v1/..., /metrics; not /healthz or
    /// the OpenAPI document); the --token is accepted for reads too. Unset: reads are open.
    #[arg(long, env = "XXFUNC_READ_TOKEN", hide_env_values = true)]
    read_token: Option<String>,
    /// Largest module accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_MODULE_SIZE)]
    max_module_size: u64,
    /// HTTP worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Seconds a freshly uploaded module is safe from garbage collection.
    #[arg(long, default_value_t = DEFAULT_UPLOAD_GRACE.as_secs())]
    gc_grace_secs: u64,
    /// Milliseconds an outputs event stream waits for a client that does not read (its
    /// buffer full) before disconnecting it.
    #[arg(long, default_value_t = DEFAULT_SSE_SEND_TIMEOUT.as_millis() as u64)]
    sse_send_timeout_ms: u64,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let data_dir = std::path::absolute(&args.data_dir)
        .with_context(|| format!("resolving data directory {}", args.data_dir.display()))?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let mut config = GatewayConfig::new(&data_dir)
        .with_listen(args.listen)
        .with_token(args.token)
        .with_read_token(args.read_token)
        .with_workers(args.workers)
        .with_upload_grace(std::time::Duration::from_secs(args.gc_grace_secs))
        .with_sse_send_timeout(std::time::Duration::from_millis(args.sse_send_timeout_ms))
        .with_store_config(StoreConfig::default().with_max_module_size(args.max_module_size));
    if let Some(store) = args.store {
        config = config.with_store(store);
    }
    let store_url = config.store_url.clone();
    let gateway = serve(config).await.with_context(|| {
        format!(
            "starting the gateway (data {}, store {store_url})",
            data_dir.display()
        )
    })?;
    // Tests and scripts read the bound address from this line.
    println!("listening on {}", gateway.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("shutting down");
    gateway.stop().await;
    Ok(())
}
