//! PostgreSQL logical replication source (pgoutput).
