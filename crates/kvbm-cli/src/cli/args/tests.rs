use clap::Parser;

use super::*;
use crate::cli::{Cli, Command};

fn replay(args: &[&str]) -> Result<ReplayConfig> {
    let mut argv = vec!["kvbm", "replay"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).expect("clap accepts it").command {
        Command::Replay(r) => r.validate(),
        _ => unreachable!(),
    }
}

fn sweep(args: &[&str]) -> Result<SweepConfig> {
    let mut argv = vec!["kvbm", "sweep"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).expect("clap accepts it").command {
        Command::Sweep(s) => s.validate(),
        _ => unreachable!(),
    }
}

fn err(r: Result<impl std::fmt::Debug>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn release_order_defaults_agree() {
    let c = replay(&[]).unwrap();
    assert_eq!(c.sim.release, ReleaseOrder::default());
    assert_eq!(c.sim.release, ReleaseOrder::RootFirst);
}

#[test]
fn block_size_is_checked_for_every_policy() {
    for policy in ["belady,sim-lru", "lru", "unbounded"] {
        let e = err(replay(&["--block-size", "3", "--policy", policy]));
        assert!(e.contains("--block-size 3"), "{e}");
    }
    let e = err(replay(&["--block-size", "2048"]));
    assert!(e.contains("power of two from 1 to 1024"), "{e}");
    // With a trace: the flag is blamed, not a trace line.
    let e = err(replay(&["--block-size", "3", "--trace", "/nonexistent"]));
    assert!(e.contains("--block-size") && !e.contains(":1:"), "{e}");
    let e = err(replay(&[
        "--block-size",
        "256",
        "--trace-block-tokens",
        "100",
        "--trace",
        "x",
    ]));
    assert!(e.contains("must divide --trace-block-tokens 100"), "{e}");
}

#[test]
fn rates_are_bounded() {
    for bad in ["1e-300", "1e-6", "0", "-1", "inf", "NaN", "1e13"] {
        let e = err(replay(&[
            "--timing",
            "serve",
            &format!("--decode-tps={bad}"),
        ]));
        assert!(e.contains("--decode-tps must be between"), "{bad}: {e}");
        let e = err(replay(&[
            "--timing",
            "serve",
            &format!("--prefill-tps={bad}"),
        ]));
        assert!(e.contains("--prefill-tps"), "{bad}: {e}");
        let e = err(replay(&[&format!("--rate={bad}")]));
        assert!(e.contains("--rate"), "{bad}: {e}");
        let e = err(replay(&[&format!("--pace={bad}")]));
        assert!(e.contains("--pace"), "{bad}: {e}");
    }
    assert!(replay(&["--timing", "serve", "--decode-tps", "0.001"]).is_ok());
}

#[test]
fn counts_are_bounded_before_any_work() {
    let e = err(replay(&["--requests", "1000000000"]));
    assert!(e.contains("1 to 1000000"), "{e}");
    let e = err(replay(&["--requests", "0"]));
    assert!(e.contains("--requests 0"), "{e}");
    let e = err(sweep(&["--points", "1000000"]));
    assert!(e.contains("--points 1000000"), "{e}");
    let long = vec!["1b"; MAX_SWEEP_POINTS + 1].join(",");
    let e = err(sweep(&["--capacities", &long]));
    assert!(e.contains("at most 1000"), "{e}");
}

#[test]
fn capacities_are_parsed_per_flag() {
    let e = err(replay(&["--capacity-tokens", "abc"]));
    assert!(e.starts_with("--capacity-tokens `abc`"), "{e}");
    // Every form the message suggests works with the flag it names.
    for ok in ["10%", "3M", "5859b"] {
        assert!(replay(&["--capacity", ok]).is_ok(), "{ok}");
        assert!(sweep(&["--capacities", ok]).is_ok(), "{ok}");
    }
    let e = err(replay(&["--capacity", "abc"]));
    assert!(e.starts_with("--capacity `abc`"), "{e}");
    let e = err(sweep(&["--from", "x"]));
    assert!(e.starts_with("--from `x`"), "{e}");
    let e = err(replay(&["--capacity-blocks", "36028797018963968"]));
    assert!(e.contains("more than 2^64 tokens"), "{e}");
    let e = err(replay(&["--capacity-blocks", "18446744073709551615"]));
    assert!(e.contains("more than 2^64 tokens"), "{e}");
}

#[test]
fn linger_needs_an_endpoint() {
    let mut argv = vec!["kvbm", "replay", "--linger", "5"];
    assert!(Cli::try_parse_from(&argv).is_err());
    argv.extend(["--metrics-addr", "127.0.0.1:0"]);
    assert!(Cli::try_parse_from(&argv).is_ok());
    let e = err(replay(&["--metrics-addr", "x", "--linger", "1e300"]));
    assert!(e.contains("--linger"), "{e}");
}

#[test]
fn plot_path_is_checked_up_front() {
    let e = err(sweep(&["--plot", "/nonexistent/dir/x.png"]));
    assert!(
        e.contains("/nonexistent/dir") && e.contains("does not exist"),
        "{e}"
    );
    let e = err(sweep(&["--plot", "x.gif"]));
    assert!(e.contains(".svg or .png"), "{e}");
    let dir = std::env::temp_dir().join(format!("kvbm-args-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("ok.svg");
    assert!(sweep(&["--plot", p.to_str().unwrap()]).is_ok());
    assert!(!p.exists(), "the check leaves no file behind");
}

#[test]
fn output_blocks_only_for_serve() {
    let instant = replay(&["--trace", "t"]).unwrap();
    let serve = replay(&["--trace", "t", "--timing", "serve"]).unwrap();
    let flag = |c: &ReplayConfig| match &c.workload {
        WorkloadSource::Traces(_, o) => o.output_blocks,
        WorkloadSource::Generator(_) => unreachable!(),
    };
    assert!(!flag(&instant));
    assert!(flag(&serve));
    let e = err(replay(&["--trace", "-", "--trace", "-"]));
    assert!(e.contains("only once"), "{e}");
}
