//! A Qdrant server as a [`VectorStore`] (cargo feature `qdrant`, selected by
//! `QDRANT_URL`): one collection per store (`{QDRANT_COLLECTION_PREFIX}exemplars`,
//! `…events`), cosine distance, created on the first upsert with the vectors'
//! dimension. Point ids are the first 8 bytes of SHA-256 of our id; the id, label
//! and text travel in the payload. The client is async (gRPC); every call runs on
//! a fresh thread that blocks on the store's own runtime, so the store can be used
//! from any thread, inside a Tokio runtime or not.

use super::{Item, Neighbour, VectorError, VectorStore};
use qdrant_client::Qdrant;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::{
    CountPointsBuilder, CreateCollectionBuilder, Distance, PointStruct, Query, QueryBatchPointsBuilder,
    QueryPointsBuilder, UpsertPointsBuilder, Value, VectorParamsBuilder,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub struct QdrantStore {
    client: Qdrant,
    collection: String,
    runtime: tokio::runtime::Runtime,
}

impl QdrantStore {
    /// Connect to `url` (gRPC, e.g. `http://127.0.0.1:6334`) for `collection`.
    pub fn connect(url: &str, api_key: Option<String>, collection: String) -> Result<Self, VectorError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| error(&collection, e))?;
        let client = Qdrant::from_url(url).api_key(api_key).build().map_err(|e| error(&collection, e))?;
        let store = QdrantStore { client, collection, runtime };
        store.run(|c, name| async move { c.health_check().await.map(|_| ()).map_err(|e| error(&name, e)) })?;
        Ok(store)
    }

    /// Drop the whole collection (tests; an operator resetting a bank).
    pub fn delete_collection(&self) -> Result<(), VectorError> {
        self.run(|c, name| async move { c.delete_collection(&name).await.map(|_| ()).map_err(|e| error(&name, e)) })
    }

    /// Run one client call to completion on a thread of its own.
    fn run<T: Send, F: std::future::Future<Output = Result<T, VectorError>> + Send>(
        &self,
        call: impl FnOnce(Qdrant, String) -> F + Send,
    ) -> Result<T, VectorError> {
        let (client, name, rt) = (self.client.clone(), self.collection.clone(), &self.runtime);
        std::thread::scope(|s| s.spawn(move || rt.block_on(call(client, name))).join())
            .unwrap_or_else(|_| Err(error(&self.collection, "the Qdrant call panicked")))
    }
}

fn error(collection: &str, e: impl std::fmt::Display) -> VectorError {
    VectorError::File { path: format!("qdrant collection {collection}"), message: e.to_string() }
}

fn point_id(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn text(v: String) -> Value {
    Value { kind: Some(Kind::StringValue(v)) }
}

fn field(payload: &HashMap<String, Value>, key: &str) -> String {
    match payload.get(key).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => s.clone(),
        _ => String::new(),
    }
}

impl VectorStore for QdrantStore {
    fn upsert(&self, items: Vec<Item>) -> Result<(), VectorError> {
        let Some(dim) = items.first().map(|i| i.vector.len()) else { return Ok(()) };
        if let Some(bad) = items.iter().find(|i| i.vector.len() != dim) {
            return Err(VectorError::Dimension { got: bad.vector.len(), want: dim });
        }
        let points: Vec<PointStruct> = items
            .into_iter()
            .map(|i| {
                let payload: HashMap<String, Value> = HashMap::from([
                    ("id".into(), text(i.id.clone())),
                    ("label".into(), text(i.label)),
                    ("text".into(), text(i.text)),
                ]);
                PointStruct::new(point_id(&i.id), i.vector, payload)
            })
            .collect();
        self.run(|c, name| async move {
            if !c.collection_exists(&name).await.map_err(|e| error(&name, e))? {
                let params = VectorParamsBuilder::new(dim as u64, Distance::Cosine);
                c.create_collection(CreateCollectionBuilder::new(&name).vectors_config(params))
                    .await
                    .map_err(|e| error(&name, e))?;
            }
            c.upsert_points(UpsertPointsBuilder::new(&name, points).wait(true)).await.map_err(|e| error(&name, e))?;
            Ok(())
        })
    }

    fn search(&self, query: &[f32], k: usize) -> Vec<Neighbour> {
        self.search_many(&[query.to_vec()], k).pop().unwrap_or_default()
    }

    /// One `query_batch` call for the whole batch.
    fn search_many(&self, queries: &[Vec<f32>], k: usize) -> Vec<Vec<Neighbour>> {
        if queries.is_empty() || k == 0 {
            return vec![Vec::new(); queries.len()];
        }
        let asked = queries.to_vec();
        let found = self.run(|c, name| async move {
            let batch = asked
                .into_iter()
                .map(|q| {
                    QueryPointsBuilder::new(&name)
                        .query(Query::new_nearest(q))
                        .limit(k as u64)
                        .with_payload(true)
                        .build()
                })
                .collect::<Vec<_>>();
            let answer =
                c.query_batch(QueryBatchPointsBuilder::new(&name, batch)).await.map_err(|e| error(&name, e))?;
            Ok(answer
                .result
                .into_iter()
                .map(|r| {
                    r.result
                        .into_iter()
                        .map(|p| Neighbour {
                            id: field(&p.payload, "id").into(),
                            label: field(&p.payload, "label").into(),
                            text: field(&p.payload, "text").into(),
                            similarity: p.score,
                        })
                        .collect()
                })
                .collect::<Vec<Vec<Neighbour>>>())
        });
        match found {
            Ok(found) if found.len() == queries.len() => found,
            Ok(_) => vec![Vec::new(); queries.len()],
            Err(e) => {
                // A missing collection (nothing upserted yet) is an empty store.
                tracing::warn!(error = %e, "qdrant search failed; no neighbours for this batch");
                vec![Vec::new(); queries.len()]
            }
        }
    }

    fn len(&self) -> usize {
        self.run(|c, name| async move {
            if !c.collection_exists(&name).await.map_err(|e| error(&name, e))? {
                return Ok(0);
            }
            let counted = c.count(CountPointsBuilder::new(&name).exact(true)).await.map_err(|e| error(&name, e))?;
            Ok(counted.result.map_or(0, |r| r.count as usize))
        })
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "qdrant count failed");
            0
        })
    }

    fn persist(&self) -> Result<(), VectorError> {
        Ok(()) // the server persists; upserts wait for it
    }
}
