//! The platform-adapter world end to end through a real component (the test-only
//! echo adapter): every export is callable from the host, with its types intact.

use palisade_plugins::bindings::{Moderation, Outbound, OutboundAction, OutboundPost, PlatformResponse};
use palisade_plugins::{PluginKind, WitEvent};
use palisade_tests::PluginDir;

#[test]
fn every_adapter_export_round_trips() {
    let dir = PluginDir::new();
    dir.install("echo-adapter");
    let (host, _) = dir.open();
    assert_eq!(host.active(PluginKind::PlatformAdapter).len(), 1);
    let adapter = host.get("echo-adapter").unwrap();

    assert_eq!(adapter.with_adapter(|v| v.platform()).unwrap(), "echo");

    let headers = vec![("X-Echo-User".to_string(), "alice".to_string())];
    let inbound = adapter.with_adapter(|v| v.parse_inbound(&headers, b"first line\nsecond line")).unwrap().unwrap();
    let events: Vec<&WitEvent> = inbound.events.iter().collect();
    assert_eq!(events.len(), 2);
    assert_eq!((events[1].content.as_str(), events[1].user_id.as_str()), ("second line", "alice"));
    assert!(inbound.reply.is_none());
    let pong = adapter.with_adapter(|v| v.parse_inbound(&[], b"ping")).unwrap().unwrap();
    assert_eq!(pong.reply.unwrap().body, b"pong");
    let refused = adapter.with_adapter(|v| v.parse_inbound(&[], &[0xff, 0xfe])).unwrap().unwrap_err();
    assert_eq!(refused.code, "not_utf8");

    let post = Outbound::Post(OutboundPost {
        channel_id: "c-9".into(),
        content: "hi there".into(),
        reply_to: None,
        idempotency_key: Some("k-1".into()),
    });
    let request = adapter.with_adapter(|v| v.format_outbound(&post)).unwrap().unwrap();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/channels/c-9/messages"));
    assert_eq!(request.body, b"hi there");
    let ban = Outbound::Action(OutboundAction {
        channel_id: "c-9".into(),
        action: Moderation::BanUser("u-1".into()),
        reason: None,
    });
    assert_eq!(adapter.with_adapter(|v| v.format_outbound(&ban)).unwrap().unwrap_err().code, "unsupported");

    let ok = PlatformResponse { status: 201, headers: Vec::new(), body: b"msg-77".to_vec() };
    assert_eq!(adapter.with_adapter(|v| v.parse_response(&ok)).unwrap().unwrap().id.as_deref(), Some("msg-77"));
    let bad = PlatformResponse { status: 401, headers: Vec::new(), body: Vec::new() };
    assert_eq!(adapter.with_adapter(|v| v.parse_response(&bad)).unwrap().unwrap_err().code, "platform_error");
}
