//! Embedding cache in Redis: `[prefix]emb:<model>:<sha256(text)>` → the vector as
//! little-endian f32 bytes, with a TTL (`EMBEDDING_CACHE_TTL`). One MGET and one
//! pipelined SET per batch (on a Redis Cluster, a pipelined GET per text instead
//! of the MGET: the keys lie in many slots). Synchronous (it runs on the screening worker thread
//! next to the model); any Redis error counts as a miss and never fails screening.

use palisade_streams::conn::LazySync;
use palisade_streams::{SyncConn, Target};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub struct EmbeddingCache {
    conn: LazySync,
    /// `[prefix]emb:<model>:`
    key_prefix: String,
    ttl_seconds: u64,
}

impl EmbeddingCache {
    pub fn new(target: Target, key_prefix: String, ttl_seconds: u64) -> Self {
        EmbeddingCache { conn: LazySync::new(target, Duration::from_millis(500)), key_prefix, ttl_seconds }
    }

    fn key(&self, text: &str) -> String {
        format!("{}{}", self.key_prefix, hex::encode(Sha256::digest(text.as_bytes())))
    }

    fn with_conn<T>(&self, f: impl FnMut(&mut SyncConn) -> redis::RedisResult<T>) -> Option<T> {
        self.conn.with_conn(f).ok()
    }

    /// Cached vectors of each text (`None` for a miss).
    pub fn get(&self, texts: &[&str]) -> Vec<Option<Vec<f32>>> {
        if texts.is_empty() {
            return Vec::new();
        }
        let keys: Vec<String> = texts.iter().map(|t| self.key(t)).collect();
        let found: Option<Vec<Option<Vec<u8>>>> = self.with_conn(|c| match c {
            SyncConn::Single(_) => c.query(redis::cmd("MGET").arg(&keys)),
            SyncConn::Cluster(_) => c.pipeline(keys.iter().map(|k| redis::cmd("GET").arg(k).to_owned()).collect()),
        });
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
        // Built inside the call: a retried call builds them again, a first one once.
        let sets = || {
            items
                .iter()
                .map(|(text, vector)| {
                    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                    redis::cmd("SET").arg(self.key(text)).arg(bytes).arg("EX").arg(self.ttl_seconds).to_owned()
                })
                .collect()
        };
        let _ = self.with_conn(|c| c.pipeline::<()>(sets()));
    }
}
