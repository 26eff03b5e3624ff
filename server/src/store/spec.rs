//! `--store`: which backend the server uses, parsed from the flag (or its environment
//! variable), shown in logs without the URL's password.

/// Environment variable read when `--store` is not given.
pub const STORE_ENV: &str = "TOKEN_SERVER_STORE";

/// Which backend the server uses (`--store`).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// `sqlite:PATH` (or `sqlite::memory:`): embedded, one instance.
    Sqlite(String),
    /// `redis://…` or `rediss://…`: one Redis (or Valkey) server.
    Redis(String),
    /// `redis+cluster://host:port[,host:port…]`: a Redis Cluster, seeded from these nodes.
    RedisCluster(String),
}

/// Without the URL's user and password, which would otherwise reach a log.
impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |url: &str| match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://[redacted]@{}", &url[..scheme], &url[at + 1..])
            }
            _ => url.to_owned(),
        };
        match self {
            Self::Sqlite(path) => write!(f, "Sqlite({path:?})"),
            Self::Redis(url) => write!(f, "Redis({:?})", redact(url)),
            Self::RedisCluster(url) => write!(f, "RedisCluster({:?})", redact(url)),
        }
    }
}

impl std::str::FromStr for StoreSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("--store sqlite:PATH needs a path (or :memory:)".into());
            }
            Ok(Self::Sqlite(path.to_owned()))
        } else if s.starts_with("redis+cluster://") {
            Ok(Self::RedisCluster(s.to_owned()))
        } else if s.starts_with("redis://") || s.starts_with("rediss://") {
            Ok(Self::Redis(s.to_owned()))
        } else {
            // The value may hold a password: never repeat it.
            Err("--store must be sqlite:PATH, redis://HOST:PORT or \
                 redis+cluster://HOST:PORT[,HOST:PORT...]"
                .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs_parse_and_their_debug_form_hides_the_password() {
        assert_eq!(
            "sqlite:/var/lib/auth.db".parse::<StoreSpec>(),
            Ok(StoreSpec::Sqlite("/var/lib/auth.db".into()))
        );
        assert_eq!(
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7000".parse::<StoreSpec>(),
            Ok(StoreSpec::RedisCluster(
                "redis+cluster://10.0.0.1:7000,10.0.0.2:7000".into()
            ))
        );
        let spec: StoreSpec = "redis://:s3cret@10.0.0.1:6379/2".parse().unwrap();
        assert_eq!(
            spec,
            StoreSpec::Redis("redis://:s3cret@10.0.0.1:6379/2".into())
        );
        let shown = format!("{spec:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("10.0.0.1:6379/2"),
            "{shown}"
        );
        for bad in ["sqlite:", "memcached://x", "postgres://u:s3cret@h/db"] {
            let err = bad.parse::<StoreSpec>().unwrap_err();
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
