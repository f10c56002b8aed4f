//! User errors: each exits with its documented code and says what to do next.

use std::path::Path;

use crate::util::{cli, code, colliding_modules, free_port, run, xx};

#[test]
fn help_documents_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = xx(dir.path(), &["--help"], code::OK);
    for needle in [
        "Exit codes:",
        "8  gateway unreachable",
        "10  function or module not found",
        "11  ambiguous hash prefix",
    ] {
        assert!(
            out.stdout.contains(needle),
            "--help lacks {needle:?}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = xx(dir.path(), &["start"], code::USAGE);
    assert!(out.stderr.contains("NAME|HASH"), "{}", out.stderr);
    let out = xx(
        dir.path(),
        &["start", "Not_A_Name!", "--offline"],
        code::USAGE,
    );
    assert!(
        out.stderr
            .contains("neither a function name nor a module hash"),
        "{}",
        out.stderr
    );
    let out = xx(dir.path(), &["list", "--gateway", "not a url"], code::USAGE);
    assert!(out.stderr.contains("--gateway"), "{}", out.stderr);
}

#[test]
fn not_in_a_crate() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["build", "deploy", "test"] {
        let out = xx(dir.path(), &[cmd, "--offline"], code::NOT_IN_CRATE);
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
        assert!(
            out.stderr.contains("not inside a Cargo package"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("cargo xxfunc new NAME"),
            "{}",
            out.stderr
        );
        assert!(
            out.stdout.is_empty(),
            "stdout must stay empty on errors: {}",
            out.stdout
        );
    }
}

#[test]
fn crate_that_is_not_a_function() {
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("plain");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(krate.join("src/main.rs"), "fn main() {}\n").unwrap();
    let out = xx(&krate, &["build"], code::NOT_A_FUNCTION);
    assert!(out.stderr.contains("package `plain`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("does not depend on the xxfunc SDK"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("cargo xxfunc new"), "{}", out.stderr);
}

#[test]
fn gateway_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then released.
    let gateway = format!("http://127.0.0.1:{}", free_port());
    for args in [
        vec!["list"],
        vec!["status", "x"],
        vec!["start", "x"],
        vec!["deploy", "--name", "x"],
    ] {
        let mut full = args.clone();
        full.extend(["--gateway", &gateway]);
        let out = xx(dir.path(), &full, code::GATEWAY_UNREACHABLE);
        assert!(
            out.stderr
                .contains(&format!("cannot reach the gateway at {gateway}")),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("--offline"), "{}", out.stderr);
    }
    // The environment variable is honoured too.
    let out = run(cli(dir.path()).arg("list").env("XXFUNC_GATEWAY", &gateway));
    assert_eq!(out.code, code::GATEWAY_UNREACHABLE, "{out:?}");
}

#[test]
fn unknown_name_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    for cmd in ["status", "stop", "start", "logs", "pin"] {
        let out = xx(
            dir.path(),
            &[cmd, "erc20", "--offline", "--data-dir", data],
            code::NOT_FOUND,
        );
        assert!(out.stderr.contains("erc20"), "{}", out.stderr);
        assert!(out.stderr.contains("cargo xxfunc"), "{cmd}: {}", out.stderr);
    }
}

#[test]
fn ambiguous_prefix_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, prefix) = colliding_modules();
    let data = dir.path().join("data");
    let ha = deploy_file(dir.path(), &data, "a", a);
    let hb = deploy_file(dir.path(), &data, "b", b);
    assert_ne!(ha, hb);
    let data = data.to_str().unwrap();
    let out = xx(
        dir.path(),
        &["start", prefix, "--offline", "--data-dir", data],
        code::AMBIGUOUS,
    );
    assert!(out.stderr.contains("ambiguous"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&ha) && out.stderr.contains(&hb),
        "candidates must be listed: {}",
        out.stderr
    );
    assert!(out.stderr.contains("more hex digits"), "{}", out.stderr);
    // A longer prefix picks one.
    let out = xx(
        dir.path(),
        &[
            "start",
            &ha["blake3:".len()..][..16],
            "--offline",
            "--data-dir",
            data,
            "--json",
        ],
        code::OK,
    );
    assert_eq!(out.json()["id"], ha.as_str());
}

#[test]
fn invalid_module_is_rejected_before_upload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap(); // valid, but no _start
    let out = xx(
        dir.path(),
        &["deploy", "--offline", path.to_str().unwrap()],
        code::INVALID_MODULE,
    );
    assert!(out.stderr.contains("_start"), "{}", out.stderr);
    let out = xx(
        dir.path(),
        &["deploy", "--offline", "missing.wasm"],
        code::NOT_FOUND,
    );
    assert!(out.stderr.contains("missing.wasm"), "{}", out.stderr);
}

/// Writes `bytes` to a file and deploys it offline under `name`; returns the hash.
pub fn deploy_file(dir: &Path, data: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    let out = xx(
        dir,
        &[
            "deploy",
            "--offline",
            "--data-dir",
            data.to_str().unwrap(),
            "--name",
            name,
            path.to_str().unwrap(),
        ],
        code::OK,
    );
    let hash = out.stdout.trim().to_string();
    assert!(
        hash.starts_with("blake3:") && hash.len() == 71,
        "deploy prints only the hash: {out:?}"
    );
    hash
}

/// A rustup toolchain on this machine without the wasm32-wasip1 standard library, if any.
fn toolchain_without_wasm_target() -> Option<String> {
    let list = std::process::Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .ok()?;
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let name = line.split_whitespace().next()?.to_string();
        let sysroot = std::process::Command::new("rustc")
            .args(["--print", "sysroot"])
            .env("RUSTUP_TOOLCHAIN", &name)
            .output()
            .ok()?;
        let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
        if !sysroot.is_empty()
            && !Path::new(&sysroot)
                .join("lib/rustlib/wasm32-wasip1")
                .exists()
        {
            return Some(name);
        }
    }
    None
}

#[test]
fn target_missing() {
    // Honest simulation: a real installed toolchain that lacks the target, with
    // installing forbidden (installing would download and change the toolchain).
    let Some(toolchain) = toolchain_without_wasm_target() else {
        eprintln!("skipping: every installed rustup toolchain has the wasm32-wasip1 target");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let krate = crate::util::new_function(dir.path(), "no-target");
    let out = run(cli(&krate)
        .arg("build")
        .env("RUSTUP_TOOLCHAIN", &toolchain)
        .env("XXFUNC_NO_INSTALL", "1"));
    assert_eq!(out.code, code::TARGET_MISSING, "{out:?}");
    assert!(
        out.stderr.contains("wasm32-wasip1 target is not installed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("rustup target add wasm32-wasip1"),
        "{}",
        out.stderr
    );
}
