//! What an operator needs when the database cannot be reached: where we tried (host and port,
//! never the password) and the first cause, said once. tokio-postgres repeats its cause inside
//! its own message, so printing the whole chain said "error connecting to server" twice.

use std::error::Error as StdError;

use deadpool::managed::{PoolError, TimeoutType};
use tokio_postgres::config::Host;

/// Where `config` connects: `host:port` (or the socket's path), each host once.
pub fn server_address(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let port_of = |index: usize| ports.get(index).or(ports.first()).copied().unwrap_or(5432);
    let addresses: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| match host {
            Host::Tcp(name) if name.contains(':') => format!("[{name}]:{}", port_of(index)),
            Host::Tcp(name) => format!("{name}:{}", port_of(index)),
            Host::Unix(dir) => format!("{}/.s.PGSQL.{}", dir.display(), port_of(index)),
        })
        .collect();
    if addresses.is_empty() {
        "no host (DATABASE_URL names none)".to_owned()
    } else {
        addresses.join(", ")
    }
}

/// A pool failure as one line: `connecting to 127.0.0.1:5432: Connection refused (os error
/// 111)`. Waiting for a free connection is not a connection failure and says so.
pub fn describe_pool_error(
    config: &tokio_postgres::Config,
    error: &PoolError<tokio_postgres::Error>,
) -> String {
    let address = server_address(config);
    match error {
        PoolError::Backend(cause) => format!("connecting to {address}: {}", root_cause(cause)),
        PoolError::Timeout(TimeoutType::Create) => {
            format!("connecting to {address}: no answer within the connect timeout")
        }
        PoolError::Timeout(TimeoutType::Recycle) => {
            format!("checking a pooled connection to {address}: no answer in time")
        }
        PoolError::Timeout(TimeoutType::Wait) => {
            "no pooled database connection became free in time".to_owned()
        }
        other => other.to_string(),
    }
}

/// `error`'s message, then its innermost cause's when that is another (tokio-postgres's
/// `invalid connection string` alone does not say what is invalid).
pub fn with_root_cause(error: &(dyn StdError + 'static)) -> String {
    let root = root_cause(error);
    let message = error.to_string();
    if message.contains(&root) {
        message
    } else {
        format!("{message}: {root}")
    }
}

/// The innermost cause's message: the one that says what went wrong (`Connection refused`, or
/// the server's own `FATAL: ...`).
fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_host_and_port_and_never_the_password() {
        let config: tokio_postgres::Config = "postgres://user:hunter2@db.example:6543/calls"
            .parse()
            .unwrap();
        assert_eq!(server_address(&config), "db.example:6543");
    }

    #[test]
    fn ipv6_hosts_are_bracketed_and_sockets_name_their_file() {
        let config: tokio_postgres::Config = "host=::1 port=5433".parse().unwrap();
        assert_eq!(server_address(&config), "[::1]:5433");
        let config: tokio_postgres::Config = "host=/run/postgresql".parse().unwrap();
        assert_eq!(server_address(&config), "/run/postgresql/.s.PGSQL.5432");
    }
}
