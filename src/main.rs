//! The `negotium` binary: a thin shell over [`negotium::cli`].

fn main() -> std::process::ExitCode {
    negotium::cli::main()
}
