//! The `featlab` binary: a thin shell over the library (see `featlab_cli::cli`).

fn main() -> std::process::ExitCode {
    featlab_cli::cli::main()
}
