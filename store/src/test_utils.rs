//! Test harness: a real S3-compatible server ([`S3sFs`]) on a loopback port.
//!
//! Enabled by the `test-utils` feature; used by the store's conformance tests and by the
//! gateway and CLI tests. Test code: failures to start the server panic with a message.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::StoreConfig;

/// Environment variable naming the `s3s-fs` binary, overriding the search.
pub const S3S_FS_ENV: &str = "XXFUNC_S3S_FS";

/// A running `s3s-fs` server with one bucket, serving a fresh temporary directory on
/// `127.0.0.1`. Killed (and its directory removed) on drop.
///
/// ```no_run
/// # async fn demo() {
/// use xxfunc_store::{ModuleStore, test_utils::S3sFs};
///
/// let Some(server) = S3sFs::start() else { return }; // prints why it skipped
/// let store = ModuleStore::open_with(&server.url("modules"), server.config()).unwrap();
/// store.put(&b"\0asm"[..]).await.unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct S3sFs {
    child: Option<Child>,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    bucket: String,
    access_key: String,
    secret_key: String,
}

impl S3sFs {
    /// Where the `s3s-fs` binary is: `$XXFUNC_S3S_FS`, `$CARGO_HOME/bin` (default
    /// `~/.cargo/bin`), then `PATH`.
    pub fn binary() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(S3S_FS_ENV) {
            return Some(PathBuf::from(path)).filter(|p| p.is_file());
        }
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
        let path = std::env::var_os("PATH").unwrap_or_default();
        let candidates = cargo_home
            .map(|home| home.join("bin"))
            .into_iter()
            .chain(std::env::split_paths(&path));
        candidates
            .map(|dir| dir.join("s3s-fs"))
            .find(|p| p.is_file())
    }

    /// Starts a server, or returns `None` (after printing why) when `s3s-fs` is not
    /// installed and `CI` is unset.
    ///
    /// # Panics
    ///
    /// When `s3s-fs` is missing and `CI` is set (CI must run the S3 cases), or when the
    /// server does not come up.
    pub fn start() -> Option<Self> {
        let Some(binary) = Self::binary() else {
            let msg = "s3s-fs not found (looked at $XXFUNC_S3S_FS, ~/.cargo/bin, PATH); \
                       run scripts/test, which installs it (cargo install s3s-fs --version 0.14.1 \
                       --features binary --locked)";
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("skipping s3s-fs cases: {msg}");
            return None;
        };
        let mut last_error = String::new();
        // A free port may be taken between probing and binding; try a few.
        for _ in 0..5 {
            match Self::try_start(&binary) {
                Ok(server) => return Some(server),
                Err(e) => last_error = e,
            }
        }
        panic!("starting {} failed: {last_error}", binary.display());
    }

    fn try_start(binary: &Path) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("xxfunc-s3s-")
            .tempdir()
            .map_err(|e| format!("creating a temp dir: {e}"))?;
        let bucket = "xxfunc".to_string();
        // s3s-fs maps each bucket to a directory under its root.
        std::fs::create_dir(dir.path().join(&bucket))
            .map_err(|e| format!("creating the bucket directory: {e}"))?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let (access_key, secret_key) = (
            "xxfunc-test-key".to_string(),
            "xxfunc-test-secret".to_string(),
        );
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(dir.path())
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawning: {e}"))?;
        let mut server = Self {
            child: Some(child),
            dir,
            addr,
            bucket,
            access_key,
            secret_key,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(server);
            }
            if let Some(child) = server.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "s3s-fs exited with {status} before listening on {addr}"
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("s3s-fs did not listen on {addr} within 15 s"));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `s3://<bucket>/<prefix>` (or `s3://<bucket>` for an empty prefix).
    pub fn url(&self, prefix: &str) -> String {
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{prefix}", self.bucket)
        }
    }

    /// Options reaching this server: endpoint, credentials, region. Ignores `AWS_*`
    /// variables, so the tests do not depend on the caller's environment.
    pub fn config(&self) -> StoreConfig {
        self.options()
            .into_iter()
            .fold(StoreConfig::default().with_env(false), |c, (k, v)| {
                c.with_option(k, v)
            })
    }

    /// The same settings as `object_store` option pairs.
    pub fn options(&self) -> Vec<(String, String)> {
        vec![
            ("aws_endpoint".into(), self.endpoint()),
            ("aws_access_key_id".into(), self.access_key.clone()),
            ("aws_secret_access_key".into(), self.secret_key.clone()),
            ("aws_region".into(), "us-east-1".into()),
            ("aws_allow_http".into(), "true".into()),
        ]
    }

    /// The same settings as `AWS_*` environment variables, for child processes.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint()),
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
        ]
    }

    /// The server's data directory (buckets are subdirectories).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the server keeps the object `key` of the bucket on disk.
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.dir.path().join(&self.bucket).join(key)
    }

    /// Stops the server now (to test a store whose server is down).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        self.kill();
    }
}
