//! Files written by real servers, from Debian's MariaDB test suite
//! (`mariadb-test-data`): binlogs of MySQL 8, which Debian does not ship.

use std::path::PathBuf;

use crate::Error;

/// Where `mariadb-test-data` installs the test suite.
const SUITE: &str = "/usr/share/mysql/mysql-test";

/// The path of `relative` inside the MariaDB test suite, e.g.
/// `std_data/mdev35643_mysql_80_binlog.000001` (a binlog written by MySQL
/// 8.0.40). Fails, naming the package, when it is not installed.
pub fn mariadb_test_file(relative: &str) -> Result<PathBuf, Error> {
    let path = PathBuf::from(SUITE).join(relative);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingTestData {
            path,
            install: "apt-get install mariadb-test-data",
        })
    }
}
