//! The connection (one server or a cluster), its timeouts, and running a step on it.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Script, Value};

use super::*;
use crate::store::kek::KeyEncryptionKey;
use crate::store::{Result, StoreError};

/// A command that gets no answer in this time fails as "unavailable" (503), rather than
/// holding a blocking thread for as long as the store is gone.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

pub(super) fn redis_error(e: RedisError) -> StoreError {
    // Kind and code only: the text of some errors quotes arguments.
    let what = format!(
        "redis {:?}{}",
        e.kind(),
        e.code().map(|c| format!(" {c}")).unwrap_or_default()
    );
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        StoreError::Unavailable(what)
    } else {
        StoreError::Backend(what)
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://…`, or `redis+cluster://host:port[,host:port…]` for a
    /// cluster). Fails if the store does not answer.
    pub(crate) fn open(url: &str, kek: KeyEncryptionKey) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("redis-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot start the redis runtime: {e}")))?;
        let (conn, cluster) = if let Some(nodes) = url.strip_prefix("redis+cluster://") {
            let nodes: Vec<String> = nodes
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| format!("redis://{n}"))
                .collect();
            let client = redis::cluster::ClusterClient::builder(nodes)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .build()
                .map_err(redis_error)?;
            let conn = runtime
                .block_on(client.get_async_connection())
                .map_err(redis_error)?;
            (Conn::Cluster(conn), true)
        } else {
            let client = redis::Client::open(url).map_err(redis_error)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            let conn = runtime
                .block_on(client.get_connection_manager_with_config(config))
                .map_err(redis_error)?;
            (Conn::Single(conn), false)
        };
        let store = Self {
            runtime: Some(runtime),
            conn,
            cluster,
            kek,
            scripts: Scripts::new(),
        };
        store.run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })?;
        Ok(store)
    }

    /// Runs `f` on the store's runtime with a clone of the connection and waits for it.
    ///
    /// A command that failed because the connection was gone (Redis restarted, a
    /// failover) runs once more on the connection the manager re-establishes, so service
    /// resumes with the first request after Redis is back. Running a step twice is safe:
    /// writes are idempotent or compare-and-set, and a second compare-and-set of a step
    /// that was applied finds the facts changed and starts over on the new ones.
    pub(super) fn run<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Conn) -> Fut + Clone,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        match self.run_once(f.clone()) {
            Err(e) if e.is_connection_dropped() || e.is_connection_refusal() || e.is_io_error() => {
                self.run_once(f).map_err(redis_error)
            }
            other => other.map_err(redis_error),
        }
    }

    pub(super) fn run_once<T, F, Fut>(&self, f: F) -> redis::RedisResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        let closed = || RedisError::from(std::io::Error::other("the redis store is closed"));
        let Some(rt) = self.runtime.as_ref() else {
            return Err(closed());
        };
        let fut = f(self.conn.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| closed())?
    }

    pub(super) fn script<T: redis::FromRedisValue + Send + 'static>(
        &self,
        script: &Script,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
    ) -> Result<T> {
        let script = script.clone();
        self.run(move |c| script_call(c, script, keys, args))
    }
}
