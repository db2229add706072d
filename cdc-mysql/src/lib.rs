//! MySQL 8 and MariaDB binlog source.
