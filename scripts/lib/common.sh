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

# RocksDB's bindings are generated with bindgen, whose clang-sys needs a file named exactly
# `libclang.so` or `libclang-<version>.so` (Debian's libclang-dev) in LIBCLANG_PATH or one of
# the directories it searches. Look-alikes do not count: `libclang-cpp.so.14` (libclang-cpp14)
# and the runtime-only `libclang.so.1` (libclang1) both fail that build.
# XXFUNC_SYSROOT prefixes the searched directories (the install checks' own tests use it).
have_libclang() {
    local root=${XXFUNC_SYSROOT:-} dir f
    local -a dirs=()
    if [ -n "${LIBCLANG_PATH:-}" ]; then
        # clang-sys takes LIBCLANG_PATH as a directory or as the library file itself.
        if [ -f "$LIBCLANG_PATH" ]; then
            case "$(basename "$LIBCLANG_PATH")" in
                libclang.so | libclang-[0-9]*.so) return 0 ;;
            esac
        fi
        dirs+=("$LIBCLANG_PATH")
    fi
    if [ -z "$root" ] && command -v llvm-config >/dev/null 2>&1; then
        dirs+=("$(llvm-config --libdir 2>/dev/null)")
    fi
    local IFS_=$IFS
    IFS=:
    for dir in ${LD_LIBRARY_PATH:-}; do dirs+=("$dir"); done
    IFS=$IFS_
    shopt -s nullglob
    for dir in "$root"/usr/local/llvm*/lib* "$root"/usr/local/lib* "$root"/usr/local/lib*/* \
        "$root"/usr/lib* "$root"/usr/lib*/* "$root"/usr/lib*/*/*; do
        [ -d "$dir" ] && dirs+=("$dir")
    done
    for dir in "${dirs[@]}"; do
        for f in "$dir"/libclang.so "$dir"/libclang-[0-9]*.so; do
            if [ -e "$f" ]; then
                shopt -u nullglob
                return 0
            fi
        done
    done
    shopt -u nullglob
    return 1
}

need_libclang() {
    have_libclang && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing libclang-dev (needed to build RocksDB)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null \
            || die "installing libclang-dev failed (see above); RocksDB's build needs it"
        have_libclang || die "libclang-dev is installed but no libclang.so was found; set LIBCLANG_PATH to the directory that holds it"
    else
        die "libclang is missing (RocksDB's build needs libclang.so); install it, e.g. 'sudo apt-get install libclang-dev', or set LIBCLANG_PATH, and run this again"
    fi
}

have_wasm_target() {
    rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1
}

need_wasm_target() {
    have_wasm_target && return
    command -v rustup >/dev/null || die "the wasm32-wasip1 target is missing and rustup is not installed; add the target to your toolchain and run this again"
    say "adding the wasm32-wasip1 target (guest functions are built for it)"
    rustup target add wasm32-wasip1 >/dev/null || die "rustup could not add the wasm32-wasip1 target"
}

# Real PostgreSQL and NATS JetStream servers for the sink tests (the tests
# start private ones on loopback, and skip with a message when absent).
have_postgres() {
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null
}

have_nats_server() {
    command -v nats-server >/dev/null
}

need_sink_servers() {
    local missing=()
    have_postgres || missing+=(postgresql)
    have_nats_server || missing+=(nats-server)
    [ ${#missing[@]} -eq 0 ] && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing ${missing[*]} (the sink tests start private servers)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
            || die "installing ${missing[*]} failed (see above); the sink tests need them"
    else
        say "note: ${missing[*]} not installed; the sink tests that need them skip (e.g. 'sudo apt-get install ${missing[*]}')"
    fi
}

# A real S3-compatible server for the store, gateway and CLI tests.
have_s3s_fs() {
    command -v s3s-fs >/dev/null && s3s-fs --version 2>/dev/null | grep -qw "$S3S_FS_VERSION"
}

need_s3s_fs() {
    have_s3s_fs && return
    say "installing s3s-fs $S3S_FS_VERSION (S3-compatible server used by the tests; about 2 minutes)"
    cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked --quiet \
        || die "installing s3s-fs failed (see above)"
    have_s3s_fs || die "s3s-fs $S3S_FS_VERSION was installed but '$(command -v s3s-fs || echo s3s-fs) --version' does not report it"
}

# A real Ethereum dev node (anvil, with cast) for the follower tests and fixture recording:
# present when both binaries run and report the pinned version.
have_anvil() {
    local bin
    for bin in anvil cast; do
        "$XXFUNC_TOOLS/node_modules/@foundry-rs/$bin-linux-amd64/bin/$bin" --version 2>/dev/null \
            | grep -qw "$ANVIL_VERSION" || return 1
    done
}

need_anvil() {
    have_anvil && return
    command -v npm >/dev/null || die "npm is needed to install anvil (the dev chain); install Node.js and run this again"
    say "installing anvil $ANVIL_VERSION from npm into $XXFUNC_TOOLS"
    mkdir -p "$XXFUNC_TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$XXFUNC_TOOLS" \
        "@foundry-rs/anvil@$ANVIL_VERSION" "@foundry-rs/cast@$ANVIL_VERSION" >/dev/null \
        || die "installing anvil from npm failed (see above)"
    have_anvil || die "anvil $ANVIL_VERSION was installed into $XXFUNC_TOOLS but does not run; see '$XXFUNC_TOOLS/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil --version'"
}
