//! Start-up checks: the server settings and privileges change capture needs,
//! refused with an error that says the fix.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::error::{Error, Result};

/// What the checks learnt about the server.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Whether the server is MariaDB.
    pub is_mariadb: bool,
    /// The version string.
    pub version: String,
}

async fn variable(conn: &mut Conn, name: &'static str) -> Result<Option<String>> {
    let rows: Vec<(String, String)> = conn
        .exec("SHOW GLOBAL VARIABLES WHERE Variable_name = ?", (name,))
        .await
        .map_err(|e| Error::mysql("reading server variables", e))?;
    Ok(rows.into_iter().next().map(|(_, v)| v))
}

/// Checks binlog settings, privileges and the server id; errors say the fix.
pub async fn check_server(conn: &mut Conn, server_id: u32) -> Result<ServerInfo> {
    let version = variable(conn, "version").await?.unwrap_or_default();
    let is_mariadb = version.contains("MariaDB");

    let log_bin = variable(conn, "log_bin").await?.unwrap_or_default();
    if !log_bin.eq_ignore_ascii_case("ON") {
        return Err(Error::Setting {
            variable: "log_bin",
            actual: log_bin,
            fix: "enable the binary log: start the server with --log-bin and restart",
        });
    }
    let format = variable(conn, "binlog_format").await?.unwrap_or_default();
    if !format.eq_ignore_ascii_case("ROW") {
        return Err(Error::Setting {
            variable: "binlog_format",
            actual: format,
            fix: "set binlog_format=ROW (SET GLOBAL binlog_format='ROW' and in the config file)",
        });
    }
    let image = variable(conn, "binlog_row_image")
        .await?
        .unwrap_or_default();
    if !image.eq_ignore_ascii_case("FULL") {
        return Err(Error::Setting {
            variable: "binlog_row_image",
            actual: image,
            fix: "set binlog_row_image=FULL (SET GLOBAL binlog_row_image='FULL' and in the config file)",
        });
    }
    let metadata = variable(conn, "binlog_row_metadata").await?;
    match metadata {
        Some(m) if m.eq_ignore_ascii_case("FULL") => {}
        Some(m) => {
            return Err(Error::Setting {
                variable: "binlog_row_metadata",
                actual: m,
                fix: "set binlog_row_metadata=FULL (SET GLOBAL binlog_row_metadata='FULL' and in the config file)",
            });
        }
        None => {
            return Err(Error::Setting {
                variable: "binlog_row_metadata",
                actual: format!("missing (server {version})"),
                fix: "upgrade to MySQL 8.0.1+ or MariaDB 10.5+ and set binlog_row_metadata=FULL",
            });
        }
    }
    check_privileges(conn, is_mariadb).await?;

    // A replica id equal to the server's own is refused by the server with a
    // confusing message; say the fix instead. Another replica using our id is
    // reported when the server drops one of the two streams (see
    // `map_stream_error`): our own previous stream still listed by SHOW SLAVE
    // HOSTS after a restart is not a clash.
    let own: Option<String> = variable(conn, "server_id").await?;
    if own.as_deref() == Some(&server_id.to_string()) {
        return Err(Error::ServerIdClash { server_id });
    }
    Ok(ServerInfo {
        is_mariadb,
        version,
    })
}

async fn check_privileges(conn: &mut Conn, is_mariadb: bool) -> Result<()> {
    let grants = grants(conn, is_mariadb).await?;
    let global: Vec<String> = grants
        .iter()
        .map(|g| g.to_ascii_uppercase())
        .filter(|g| g.contains(" ON *.* "))
        .collect();
    let has = |p: &str| {
        global
            .iter()
            .any(|g| g.contains("ALL PRIVILEGES") || g.contains(p))
    };
    if !has("REPLICATION SLAVE") {
        return Err(Error::Privilege {
            privilege: "REPLICATION SLAVE",
        });
    }
    let client = if is_mariadb {
        has("REPLICATION CLIENT") || has("BINLOG MONITOR")
    } else {
        has("REPLICATION CLIENT")
    };
    if !client {
        return Err(Error::Privilege {
            privilege: if is_mariadb {
                "BINLOG MONITOR"
            } else {
                "REPLICATION CLIENT"
            },
        });
    }
    Ok(())
}

/// The current user's grants. MySQL lists only the names of granted roles, so
/// the privileges of the session's active roles are asked for with `USING`
/// (plain `SHOW GRANTS` again if the server refuses that); MariaDB already
/// lists the privileges of its current role.
async fn grants(conn: &mut Conn, is_mariadb: bool) -> Result<Vec<String>> {
    if !is_mariadb {
        let roles: Option<Option<String>> = conn
            .query_first("SELECT CURRENT_ROLE()")
            .await
            .unwrap_or(None);
        if let Some(query) = grants_query(roles.flatten().as_deref())
            && let Ok(grants) = conn.query(query).await
        {
            return Ok(grants);
        }
    }
    conn.query("SHOW GRANTS")
        .await
        .map_err(|e| Error::mysql("reading grants", e))
}

/// `SHOW GRANTS` with the privileges of `active_roles`, as MySQL's
/// `CURRENT_ROLE()` gives them (`` `r`@`%`,`s`@`%` ``, or `NONE`).
fn grants_query(active_roles: Option<&str>) -> Option<String> {
    let roles = active_roles?.trim();
    if roles.is_empty() || roles.eq_ignore_ascii_case("NONE") {
        return None;
    }
    Some(format!("SHOW GRANTS FOR CURRENT_USER() USING {roles}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MySqlConfig, Password};

    #[tokio::test(flavor = "multi_thread")]
    async fn privileges_granted_through_a_default_role_are_read_on_either_path() {
        let db = cdc_testkit::MariaDb::start()
            .unwrap_or_else(|e| panic!("MariaDB test server could not start: {e}"));
        db.sql(&format!(
            "CREATE ROLE cdc_reader; \
             GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO cdc_reader; \
             CREATE USER 'via_role'@'%' IDENTIFIED BY '{}'; \
             GRANT cdc_reader TO 'via_role'@'%'; \
             SET DEFAULT ROLE cdc_reader FOR 'via_role'@'%';",
            cdc_testkit::PASSWORD
        ))
        .unwrap();
        let config = MySqlConfig::new(
            db.host(),
            db.port(),
            "via_role",
            Password::new(cdc_testkit::PASSWORD),
        );
        let mut conn = crate::stream::connect(&config).await.unwrap();
        check_privileges(&mut conn, true).await.unwrap();
        // The MySQL path: MariaDB refuses `SHOW GRANTS ... USING`, so the plain
        // grants are read instead (with MariaDB's names, which the MySQL
        // checks would not take for REPLICATION CLIENT).
        let grants = grants(&mut conn, false).await.unwrap();
        assert!(
            grants.iter().any(|g| g.contains("REPLICATION SLAVE")),
            "{grants:?}"
        );
    }

    #[test]
    fn active_mysql_roles_are_expanded_with_using() {
        assert_eq!(grants_query(None), None);
        assert_eq!(grants_query(Some("NONE")), None);
        assert_eq!(grants_query(Some("")), None);
        assert_eq!(
            grants_query(Some("`cdc_reader`@`%`,`ops`@`localhost`")).as_deref(),
            Some("SHOW GRANTS FOR CURRENT_USER() USING `cdc_reader`@`%`,`ops`@`localhost`")
        );
    }
}
