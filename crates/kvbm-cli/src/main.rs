//! `kvbm`: KV-cache trace replay and capacity planning. See `kvbm --help`.

use clap::Parser;

fn main() {
    let cli = kvbm_cli::commands::Cli::parse();
    if let Err(e) = kvbm_cli::commands::main_with(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
