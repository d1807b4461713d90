//! The `negotium` binary: a thin shell over [`negotium::cli`].

/// See Cargo.toml: large per-session buffers are reused instead of being
/// mapped and unmapped by the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    negotium::cli::main()
}
