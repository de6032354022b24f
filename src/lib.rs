//! afb: Azure Files Backup.
//!
//! Data flow, one module per stage:
//! - [`azure`]: the Azure Files REST client (credentials and signing, requests, retries).
//! - [`emulator`]: a local Azure Files service that speaks the same REST API, for tests, demos and benchmarks.
//! - [`generate`]: synthetic shares with realistic names, sizes, depths and permissions.
//! - [`index`]: the columnar node index: Parquet snapshots per tenant and share, diff, SQL.
//! - [`scan`]: a consistent listing of a share (from a share snapshot) committed as an index snapshot.
//! - [`hash`]: QuickXorHash, computed while content streams past.
//! - [`backup`]: backup, restore, verify and forget over the repository, driven by index diffs.
//! - [`repository`]: the content repository in object storage (chunks, packs, index, bundles, metadata).
//! - [`jobs`]: job handlers, the embedded and PostgreSQL queues, workers, schedules.
//! - [`api`] and [`web`]: the REST API and the dashboard; [`server`]: `afb serve`, both on one listener.
//! - [`ids`]: [`ids::NodeId`] (afb's dense node ids) and [`ids::FileId`] (Azure's FileIds), kept apart.
//! - [`units`]: sizes, counts, rates and durations for people, the same in the dashboard and the CLI.

pub mod api;
pub mod azure;
pub mod backup;
pub mod cli;
pub mod demo;
pub mod emulator;
pub mod generate;
pub mod hash;
pub mod ids;
pub mod index;
pub mod jobs;
pub mod repository;
pub mod scan;
pub mod server;
pub mod spill;
pub mod units;
pub mod web;
