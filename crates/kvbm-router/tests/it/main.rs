//! kvbm-router's integration tests, one module per behaviour, linked into
//! one test binary.

mod index_model;
mod resync_model;
mod routing;
