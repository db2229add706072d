//! The online migration workflow: a new pipeline replaces an old one while
//! the source keeps changing, as a persisted, resumable state machine.
//!
//! ```text
//! created -> backfilling -> catching up -> verified -> cut over -> completed
//!    \____________\_______________\____________\
//!                                               -> cancelled
//! ```
//!
//! * **created**: the host has attached the new pipeline to the change log
//!   (its own cursor; the old pipeline's is never touched).
//! * **backfilling**: each table of the [plan](MigrationPlan) is copied into
//!   the new pipeline's sink while changes stream ([`Backfill`](crate::backfill::Backfill)), in order,
//!   each resumable from its progress file.
//! * **catching up**: the new pipeline applies the log until its lag is under
//!   [`MigrationConfig::max_lag_events`] and [`MigrationConfig::max_lag`];
//!   then every table is compared with the source ([`Verification`](crate::verify::Verification)). A
//!   difference stops the run with [`MigrationError::NotEqual`]; the stage
//!   stays *catching up*, and the next run compares again.
//! * **verified**: the host's [`cut_over`](MigrationPlan::cut_over) switches
//!   its traffic to the new target (and stops the old pipeline).
//! * **cut over**: the old pipeline's cursor is removed, which releases the
//!   log segments it held; then **completed**.
//! * **cancelled** ([`Migration::abandon`], before the cut-over): the new
//!   pipeline is stopped and its cursor removed; nothing else is touched.
//!
//! The stage is saved (write, fsync, rename) after every step, and
//! [`Migration::run`] goes on from the saved one, so a crash or a
//! cancellation loses at most the step in progress: a backfill resumes after
//! its last chunk, a verification after its last chunk, and a cut-over
//! interrupted before its stage was saved is asked for again, so the
//! callback must be idempotent.
//!
//! ```no_run
//! # async fn demo<P: cdc_core::migration::MigrationPlan>(
//! #     plan: P,
//! #     new_pipeline: &cdc_core::pipeline::PipelineHandle,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use cdc_core::ingest::CancellationToken;
//! use cdc_core::migration::{Migration, MigrationConfig, MigrationStage};
//!
//! // `new_pipeline` runs with its own cursor "orders-v2", started at the
//! // log's end; "orders-v1" is the pipeline it replaces.
//! let config = MigrationConfig::new("migrations/orders", "orders-v2", Some("orders-v1".into()));
//! let mut migration = Migration::new(plan, config);
//! let status = migration.run(new_pipeline, &CancellationToken::new()).await?;
//! assert_eq!(status.stage, MigrationStage::Completed);
//! # Ok(()) }
//! ```
//!
//! The quickstart (`examples/examples/quickstart/`) holds a complete plan: a
//! PostgreSQL table into a SQLite database whose mapping renames a column.

mod run;
mod state;

use async_trait::async_trait;

pub use run::{Migration, MigrationConfig, MigrationError};
pub use state::{MigrationStage, MigrationStatus};

use crate::backfill::ChunkSource;
use crate::event::TableName;
use crate::pipeline::BoxedError;
use crate::verify::{ColumnMap, TableReader};

/// What a migration moves, and how the host cuts over.
///
/// # Contract
///
/// * [`tables`](Self::tables) is the same list, in the same order, on every
///   run of one migration.
/// * [`chunks`](Self::chunks) and [`readers`](Self::readers) are asked for
///   each table when its step starts; each call may connect anew.
/// * [`cut_over`](Self::cut_over) is called once the new target verified
///   equal, and again if a crash came before its success was saved.
#[async_trait]
pub trait MigrationPlan: Send {
    /// The source's chunk reader, for backfills.
    type Chunks: ChunkSource;
    /// The source's table reader, for verification.
    type Source: TableReader;
    /// The new target's table reader, for verification.
    type Sink: TableReader;

    /// The tables to move, in backfill order.
    fn tables(&self) -> Vec<TableName>;

    /// The chunk reader of `table`.
    async fn chunks(&mut self, table: &TableName) -> Result<Self::Chunks, BoxedError>;

    /// The source and target readers of `table`, and how their columns pair.
    async fn readers(
        &mut self,
        table: &TableName,
    ) -> Result<(Self::Source, Self::Sink, ColumnMap), BoxedError>;

    /// Switches the host to the new target: its traffic, and stopping the
    /// old pipeline. Idempotent.
    async fn cut_over(&mut self) -> Result<(), BoxedError>;
}
