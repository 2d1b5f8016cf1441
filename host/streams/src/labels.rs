//! Reviewer labels: rows a trust-and-safety team labels by hand, appended to the
//! `events:labels` stream (`POST /v1/admin/labels`) and read back whole by
//! `palisade train --from-stream`. The stream only grows; trimming it is the
//! operator's choice (`XTRIM`), never Palisade's.

use super::RedisConn;
use super::StreamError;

/// One labelled row as a reviewer sent it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelRow {
    /// The row's id (an event id, usually): later rows with the same id win when training.
    pub id: String,
    pub text: String,
    pub label: String,
    /// Who labelled it (free text: a reviewer's name or tool).
    #[serde(default)]
    pub reviewer: String,
}

/// Where reviewer labels go: the stream and a connection to it.
#[derive(Clone)]
pub struct LabelStream {
    pub conn: RedisConn,
    pub key: String,
}

impl LabelStream {
    /// Append rows in one round trip; their entry ids, in order.
    pub async fn append(&self, rows: &[LabelRow], now_ms: u64) -> Result<Vec<String>, StreamError> {
        let mut pipe = redis::pipe();
        for r in rows {
            let at = now_ms.to_string();
            let fields = [
                ("id", r.id.as_str()),
                ("text", r.text.as_str()),
                ("label", r.label.as_str()),
                ("reviewer", r.reviewer.as_str()),
                ("time_ms", at.as_str()),
            ];
            pipe.xadd(&self.key, "*", &fields);
        }
        pipe.query_async(&mut self.conn.clone()).await.map_err(StreamError::from)
    }
}

/// Every row of the stream at `key`, oldest first; a later row replaces an
/// earlier one with the same id (a reviewer corrected it).
pub fn read_all(target: &super::Target, key: &str) -> anyhow::Result<Vec<LabelRow>> {
    let mut conn = target.connect_sync(std::time::Duration::from_secs(5))?;
    let mut rows: Vec<LabelRow> = Vec::new();
    let mut index = std::collections::HashMap::<String, usize>::new();
    let mut from = "-".to_string();
    loop {
        let reply: redis::streams::StreamRangeReply =
            conn.query(redis::cmd("XRANGE").arg(key).arg(&from).arg("+").arg("COUNT").arg(1000))?;
        let Some(last) = reply.ids.last().map(|e| e.id.clone()) else { break };
        for e in &reply.ids {
            let field = |name: &str| e.get::<String>(name).unwrap_or_default();
            let row =
                LabelRow { id: field("id"), text: field("text"), label: field("label"), reviewer: field("reviewer") };
            match index.get(&row.id) {
                Some(i) => rows[*i] = row,
                None => {
                    index.insert(row.id.clone(), rows.len());
                    rows.push(row);
                }
            }
        }
        from = format!("({last}");
    }
    Ok(rows)
}
