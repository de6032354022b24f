//! The integration tests: one binary (so datafusion is linked once), one module per area of the data flow.

mod support;

mod api;
mod backup;
mod cli;
mod client_scenarios;
mod client_transport;
mod dashboard;
mod emulator_http;
mod emulator_virtual;
mod fixtures;
mod index_diff;
mod index_snapshot;
mod index_sql;
mod jobs_control_plane;
mod jobs_crash;
mod jobs_data;
mod jobs_queue;
mod module_graph;
mod repository_blob;
mod repository_chunking;
mod repository_quickxor;
mod repository_schema;
mod repository_store;
mod scale;
mod scan;
