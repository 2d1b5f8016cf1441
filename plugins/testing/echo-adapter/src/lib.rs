//! Test-only platform adapter that exercises every export of the
//! `platform-adapter` world: each non-empty body line becomes an event; a body of
//! `ping` is answered directly (like Slack's challenge or Discord's PING); a post
//! becomes `POST /channels/{id}/messages` with the text as body; the platform's
//! answer body is the delivered message id.

use palisade_sdk::{
    Adapter, AdapterError, Delivery, Event, HttpReply, HttpRequest, Inbound, Outbound, PlatformResponse, Settings,
};

pub struct Echo {
    platform: String,
}

impl Adapter for Echo {
    fn new(settings: &Settings) -> Result<Self, String> {
        Ok(Echo { platform: settings.get("platform").unwrap_or_else(|| "echo".into()) })
    }

    fn platform(&self) -> String {
        self.platform.clone()
    }

    fn parse_inbound(&self, headers: &[(String, String)], body: &[u8]) -> Result<Inbound, AdapterError> {
        let text = std::str::from_utf8(body).map_err(|_| AdapterError::new("not_utf8", "the body is not UTF-8"))?;
        if text.trim() == "ping" {
            return Ok(Inbound {
                events: Vec::new(),
                reply: Some(HttpReply { status: 200, headers: Vec::new(), body: b"pong".to_vec() }),
            });
        }
        let user = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-echo-user")).map_or("anonymous", |(_, v)| v);
        let events: Vec<Event> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| Event {
                event_id: format!("echo-{i}"),
                event_type: "message".into(),
                platform: self.platform.clone(),
                user_id: user.into(),
                author_id: Some(user.into()),
                content: line.into(),
                ..Event::default()
            })
            .collect();
        if events.is_empty() {
            return Err(AdapterError::new("empty", "no lines in the body"));
        }
        Ok(Inbound { events, reply: None })
    }

    fn format_outbound(&self, request: &Outbound) -> Result<HttpRequest, AdapterError> {
        match request {
            Outbound::Post(post) => Ok(HttpRequest {
                method: "POST".into(),
                path: format!("/channels/{}/messages", post.channel_id),
                headers: vec![("content-type".into(), "text/plain".into())],
                body: post.content.as_bytes().to_vec(),
            }),
            Outbound::Action(_) => Err(AdapterError::new("unsupported", "the echo platform has no moderation actions")),
        }
    }

    fn parse_response(&self, response: &PlatformResponse) -> Result<Delivery, AdapterError> {
        if (200..300).contains(&response.status) {
            Ok(Delivery { id: Some(String::from_utf8_lossy(&response.body).into_owned()) })
        } else {
            Err(AdapterError::new("platform_error", format!("the platform answered {}", response.status)))
        }
    }
}

palisade_sdk::export_adapter!(Echo);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    #[test]
    fn lines_become_events_and_ping_is_answered() {
        let h = Harness::<Echo>::adapter(&[]).unwrap();
        let inbound = h.plugin.parse_inbound(&[], b"hello\n\nworld").unwrap();
        assert_eq!(inbound.events.iter().map(|e| e.content.as_str()).collect::<Vec<_>>(), ["hello", "world"]);
        assert_eq!(h.plugin.parse_inbound(&[], b"ping").unwrap().reply.unwrap().body, b"pong");
    }
}
