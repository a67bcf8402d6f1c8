//! `kvbm`: KV-cache trace replay and capacity planning. See `kvbm --help`.

fn main() -> std::process::ExitCode {
    kvbm_cli::run()
}
