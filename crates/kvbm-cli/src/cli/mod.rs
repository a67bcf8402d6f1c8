//! The command line: its clap types and their validation into typed
//! configurations ([`args`], [`cluster_args`]). Running them is
//! [`crate::commands`]' job.

pub(crate) mod args;
pub(crate) mod cluster_args;
