//! Starting gateways and building test modules.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, ChildStdout, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use xxfunc_api::client::Client;
use xxfunc_store::test_utils::S3sFs;

pub const TOKEN: &str = "test-token-0123456789";

/// Which module store a gateway uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    File,
    S3,
}

/// A running gateway process, killed on drop.
pub struct Gateway {
    child: Option<Child>,
    _stdout: Option<BufReader<ChildStdout>>,
    pub url: String,
    pub data_dir: PathBuf,
    pub store_url: String,
    env: Vec<(String, String)>,
    extra_args: Vec<String>,
    pub s3: Option<S3sFs>,
    _tmp: Option<tempfile::TempDir>,
}

impl Gateway {
    /// A fresh gateway on `backend` with the test token; `None` when s3s-fs is missing.
    pub fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, &[])
    }

    pub fn start_with(backend: Backend, extra_args: &[&str]) -> Option<Self> {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let (store_url, env, s3) = match backend {
            Backend::File => (
                format!("file://{}", tmp.path().join("modules").display()),
                Vec::new(),
                None,
            ),
            Backend::S3 => {
                let s3 = S3sFs::start()?;
                (s3.url("modules"), s3.env(), Some(s3))
            }
        };
        let mut gw = Self {
            child: None,
            _stdout: None,
            url: String::new(),
            data_dir,
            store_url,
            env,
            extra_args: extra_args.iter().map(ToString::to_string).collect(),
            s3,
            _tmp: Some(tmp),
        };
        gw.spawn("127.0.0.1:0");
        Some(gw)
    }

    /// (Re)starts the process on the same data directory and store.
    pub fn spawn(&mut self, listen: &str) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xxfunc-gateway"));
        cmd.args([
            "--listen",
            listen,
            "--token",
            TOKEN,
            "--store",
            &self.store_url,
        ])
        .arg("--data-dir")
        .arg(&self.data_dir)
        .args(["--gc-grace-secs", "0"])
        .args(&self.extra_args)
        .env("RUST_LOG", "error")
        .env_remove("XXFUNC_TOKEN")
        .envs(self.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawning xxfunc-gateway");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send((line, reader));
        });
        let (line, reader) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("gateway printed its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let status = child.try_wait();
                panic!("gateway did not start: first line {line:?}, status {status:?}")
            });
        self.url = url.to_string();
        self.child = Some(child);
        self._stdout = Some(reader);
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A client with the right token.
    pub fn client(&self) -> Client {
        Client::new(&self.url)
            .expect("gateway URL")
            .with_token(Some(TOKEN.into()))
    }

    /// A client without a token.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.url).expect("gateway URL")
    }

    pub fn addr(&self) -> &str {
        self.url.strip_prefix("http://").expect("http URL")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// For each async `fn name(gw: Gateway)` listed, a module `name` with a
/// test per backend: `file`, and `s3` (skipped with a message without s3s-fs).
macro_rules! on_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn file() {
                    let gw = crate::support::Gateway::start(crate::support::Backend::File).expect("file gateway");
                    super::$name(gw).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn s3() {
                    let Some(gw) = crate::support::Gateway::start(crate::support::Backend::S3) else { return };
                    super::$name(gw).await;
                }
            }
        )*
    };
}
pub(crate) use on_backends;

/// A minimal valid function module; `seed` makes its bytes (and hash) unique.
pub fn module(seed: u64) -> Vec<u8> {
    let mut bytes = wat::parse_str(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
            (memory (export "memory") 1)
            (func (export "_start")))"#,
    )
    .expect("test module parses");
    append_custom(&mut bytes, &seed.to_le_bytes());
    bytes
}

/// Appends a custom section `x` holding `payload` (keeps the module valid).
pub fn append_custom(bytes: &mut Vec<u8>, payload: &[u8]) {
    let size = 2 + payload.len();
    assert!(size < 128, "single-byte LEB section size");
    bytes.extend_from_slice(&[0x00, size as u8, 0x01, b'x']);
    bytes.extend_from_slice(payload);
}

/// A valid module of about `len` bytes.
pub fn big_module(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = module(seed);
    // One custom section with a multi-byte LEB size.
    let payload_len = len.saturating_sub(bytes.len() + 8);
    let size = payload_len + 2;
    bytes.push(0x00);
    let mut v = size;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(&[0x01, b'y']);
    bytes.extend((0..payload_len).map(|i| (i as u64 ^ seed) as u8));
    bytes
}

/// Two valid modules whose hashes share the first 8 hex digits, found by a
/// birthday search over the custom-section seed (about 2^16 hashes).
pub fn colliding_modules() -> (Vec<u8>, Vec<u8>) {
    let mut seen = std::collections::HashMap::new();
    for seed in 0u64.. {
        let bytes = module(seed);
        let short = xxfunc_api::ModuleHash::of(&bytes).short(8);
        if let Some(other) = seen.insert(short, seed) {
            return (module(other), bytes);
        }
    }
    unreachable!("the search ends")
}

/// Sends a raw HTTP/1.1 request (paths exactly as given, no normalisation).
/// Returns the status and body.
pub fn raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("write head");
    let _ = stream.write_all(body);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Parses an error body and returns its code.
pub fn error_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("error body {body:?} is not JSON: {e}"));
    let code = v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"));
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
    code.to_string()
}
