//! The walsender connection: creates the publication and the slot when missing, streams
//! pgoutput from the slot into the applier, reports the applier's acknowledged LSN, and
//! reconnects with backoff when the connection is lost.

use std::time::Duration;

use pgwire_replication::{Lsn as WireLsn, ReplicationClient};
use tokio::sync::watch;

use super::{ApplierHandle, ApplyInput};
use crate::pg::names::quote_identifier;
use crate::pg::ConnectionSettings;
use crate::position::Lsn;

/// First wait before reconnecting; doubled after each failure up to the maximum.
const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(500);
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(30);

/// Names of the publication and slot Volt streams from.
#[derive(Debug, Clone)]
pub struct StreamNames {
    pub publication: String,
    pub slot: String,
}

/// Error from the replication set-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("Postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Invalid(String),
}

/// The slot as `prepare` found or made it.
#[derive(Debug, Clone, Copy)]
pub struct SlotState {
    /// Where streaming resumes: the slot's confirmed position.
    pub confirmed: Lsn,
    /// True when the slot was created (or re-created) just now, so no earlier position can be
    /// resumed and every existing shape has lost changes.
    pub created: bool,
}

/// Checks the server, creates the publication and the slot when they are missing, and
/// returns the slot's state. A slot whose WAL is lost is dropped and created again.
pub async fn prepare(connection: &ConnectionSettings, names: &StreamNames) -> Result<SlotState, SetupError> {
    if !is_valid_slot_name(&names.slot) {
        return Err(SetupError::Invalid(format!(
            "invalid replication slot name {:?}: use 1 to 63 lower-case letters, digits or underscores",
            names.slot
        )));
    }
    let client = crate::pg::connect(connection).await?;
    let wal_level: String = client.query_one("SHOW wal_level", &[]).await?.get(0);
    if wal_level != "logical" {
        return Err(SetupError::Invalid(format!(
            "the server runs with wal_level={wal_level}; set wal_level=logical in postgresql.conf and restart it"
        )));
    }

    let publication_exists = client
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&names.publication])
        .await?
        .is_some();
    if !publication_exists {
        // Changes to a partition are published as changes to the partitioned table, which is
        // what a shape on the parent follows.
        let sql = format!(
            "CREATE PUBLICATION {} WITH (publish_via_partition_root = true)",
            quote_identifier(&names.publication)
        );
        client.batch_execute(&sql).await?;
        tracing::info!(publication = %names.publication, "created the publication");
    }

    let slot = client
        .query_opt(
            "SELECT confirmed_flush_lsn::text, plugin::text, wal_status::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&names.slot],
        )
        .await?;
    if let Some(row) = slot {
        let plugin: Option<String> = row.get(1);
        if plugin.as_deref() != Some("pgoutput") {
            return Err(SetupError::Invalid(format!(
                "replication slot {} exists but does not use pgoutput; drop it or choose another --slot",
                names.slot
            )));
        }
        let wal_status: Option<String> = row.get(2);
        if wal_status.as_deref() != Some("lost") {
            let lsn: Option<String> = row.get(0);
            let confirmed = lsn.unwrap_or_else(|| "0/0".to_owned()).parse().map_err(SetupError::Invalid)?;
            return Ok(SlotState { confirmed, created: false });
        }
        // Postgres removed WAL the slot still needed: changes are gone for good.
        tracing::warn!(slot = %names.slot, "the replication slot lost WAL it needed; creating it again, and every shape will resync");
        client.execute("SELECT pg_drop_replication_slot($1)", &[&names.slot]).await?;
    }
    let row = client
        .query_one("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", &[&names.slot])
        .await?;
    tracing::info!(slot = %names.slot, "created the replication slot");
    let confirmed = row.get::<_, String>(0).parse().map_err(SetupError::Invalid)?;
    Ok(SlotState { confirmed, created: true })
}

/// Postgres accepts only these characters in slot names, and the walsender command that
/// starts streaming takes the name unquoted.
fn is_valid_slot_name(name: &str) -> bool {
    (1..=63).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Streams until `shutdown` turns true, reconnecting after failures.
pub async fn run(
    connection: ConnectionSettings,
    names: StreamNames,
    applier: ApplierHandle,
    mut acknowledged: watch::Receiver<Lsn>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut delay = RECONNECT_DELAY_MIN;
    loop {
        let acked = *acknowledged.borrow_and_update();
        let config = connection
            .replication_config(&names.slot, &names.publication)
            .with_ack_lsn(WireLsn::from_u64(acked.0));
        let outcome = tokio::select! {
            outcome = stream_once(config, &applier, &mut acknowledged, &mut delay) => outcome,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match outcome {
            Ok(()) => tracing::warn!(slot = %names.slot, "the replication stream ended; reconnecting"),
            Err(error) => tracing::warn!(slot = %names.slot, %error, retry_in_ms = delay.as_millis() as u64, "replication stream failed; reconnecting"),
        }
        if applier.send(ApplyInput::StreamLost).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        delay = (delay * 2).min(RECONNECT_DELAY_MAX);
        // The slot may have been dropped or invalidated behind Volt's back.
        match prepare(&connection, &names).await {
            Ok(state) if state.created => {
                if applier.send(ApplyInput::SlotRecreated).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(slot = %names.slot, %error, "cannot check the replication slot"),
        }
    }
}

async fn stream_once(
    config: pgwire_replication::ReplicationConfig,
    applier: &ApplierHandle,
    acknowledged: &mut watch::Receiver<Lsn>,
    delay: &mut Duration,
) -> Result<(), pgwire_replication::PgWireError> {
    let mut client = ReplicationClient::connect(config).await?;
    client.wait_started().await?;
    tracing::info!("replication stream started");
    *delay = RECONNECT_DELAY_MIN;
    loop {
        tokio::select! {
            event = client.recv() => {
                let Some(event) = event? else {
                    return Ok(());
                };
                if applier.send(ApplyInput::Event(event)).await.is_err() {
                    client.stop();
                    return Ok(());
                }
            }
            changed = acknowledged.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                let lsn = *acknowledged.borrow_and_update();
                client.update_applied_lsn(WireLsn::from_u64(lsn.0));
            }
        }
    }
}
