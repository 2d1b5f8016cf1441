//! Embedding cache in Redis: `[prefix]emb:<model>:<sha256(text)>` → the vector as
//! little-endian f32 bytes, with a TTL (`EMBEDDING_CACHE_TTL`). One MGET and one
//! pipelined SET per batch. Synchronous (it runs on the screening worker thread
//! next to the model); any Redis error counts as a miss and never fails screening.

use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::time::Duration;

pub struct EmbeddingCache {
    client: redis::Client,
    conn: Mutex<Option<redis::Connection>>,
    /// `[prefix]emb:<model>:`
    key_prefix: String,
    ttl_seconds: u64,
}

impl EmbeddingCache {
    pub fn new(redis_url: &str, key_prefix: String, ttl_seconds: u64) -> Result<Self, redis::RedisError> {
        Ok(EmbeddingCache { client: redis::Client::open(redis_url)?, conn: Mutex::new(None), key_prefix, ttl_seconds })
    }

    fn key(&self, text: &str) -> String {
        format!("{}{}", self.key_prefix, hex::encode(Sha256::digest(text.as_bytes())))
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Option<T> {
        let mut guard = self.conn.lock().ok()?;
        if guard.is_none() {
            let conn = self.client.get_connection_with_timeout(Duration::from_millis(200)).ok()?;
            conn.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
            conn.set_write_timeout(Some(Duration::from_millis(500))).ok()?;
            *guard = Some(conn);
        }
        let result = f(guard.as_mut()?);
        if result.is_err() {
            *guard = None; // reconnect next time
        }
        result.ok()
    }

    /// Cached vectors of each text (`None` for a miss).
    pub fn get(&self, texts: &[&str]) -> Vec<Option<Vec<f32>>> {
        if texts.is_empty() {
            return Vec::new();
        }
        let keys: Vec<String> = texts.iter().map(|t| self.key(t)).collect();
        let found: Option<Vec<Option<Vec<u8>>>> = self.with_conn(|c| redis::cmd("MGET").arg(&keys).query(c));
        match found {
            Some(values) => values
                .into_iter()
                .map(|v| {
                    v.filter(|b| b.len() % 4 == 0 && !b.is_empty())
                        .map(|b| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
                })
                .collect(),
            None => vec![None; texts.len()],
        }
    }

    /// Remember vectors (best effort).
    pub fn put(&self, items: &[(&str, &[f32])]) {
        if items.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (text, vector) in items {
            let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            pipe.cmd("SET").arg(self.key(text)).arg(bytes).arg("EX").arg(self.ttl_seconds).ignore();
        }
        let _ = self.with_conn(|c| pipe.query::<()>(c));
    }
}
