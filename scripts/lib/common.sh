# shellcheck shell=bash
# Shared by the scripts in scripts/: environment and idempotent installs.
# Every `need_*` function checks first and installs only what is missing.

XXFUNC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export XXFUNC_ROOT
# Build outside the clone so repeated runs (and CI) reuse the compiled RocksDB and wasmtime.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/xxfunc/target}
export XXFUNC_TOOLS=${XXFUNC_TOOLS:-$HOME/.cache/xxfunc-tools}
export PATH="$HOME/.cargo/bin:$XXFUNC_TOOLS/node_modules/@foundry-rs/anvil-linux-amd64/bin:$XXFUNC_TOOLS/node_modules/@foundry-rs/cast-linux-amd64/bin:$PATH"

ANVIL_VERSION=1.7.1
S3S_FS_VERSION=0.14.1

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_cargo() {
    command -v cargo >/dev/null || die "cargo is not installed; install Rust with rustup (https://rustup.rs) and run this again"
}

# RocksDB's bindings are generated with bindgen, which needs libclang.
need_libclang() {
    if ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so'; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing libclang-dev (needed to build RocksDB)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
    else
        die "libclang is missing (RocksDB's build needs it); install it, e.g. 'sudo apt-get install libclang-dev', and run this again"
    fi
}

need_wasm_target() {
    if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
        return
    fi
    say "adding the wasm32-wasip1 target (guest functions are built for it)"
    rustup target add wasm32-wasip1 >/dev/null
}

# A real S3-compatible server for the store, gateway and CLI tests.
need_s3s_fs() {
    if command -v s3s-fs >/dev/null && s3s-fs --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
        return
    fi
    say "installing s3s-fs $S3S_FS_VERSION (S3-compatible server used by the tests; about 2 minutes)"
    cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked --quiet
}

# A real Ethereum dev node for the follower and fixture-recording.
need_anvil() {
    if [ -x "$XXFUNC_TOOLS/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" ] \
        && [ -x "$XXFUNC_TOOLS/node_modules/@foundry-rs/cast-linux-amd64/bin/cast" ]; then
        return
    fi
    command -v npm >/dev/null || die "npm is needed to install anvil (the dev chain); install Node.js and run this again"
    say "installing anvil $ANVIL_VERSION from npm into $XXFUNC_TOOLS"
    mkdir -p "$XXFUNC_TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$XXFUNC_TOOLS" \
        "@foundry-rs/anvil@$ANVIL_VERSION" "@foundry-rs/cast@$ANVIL_VERSION" >/dev/null
}
