//! The synchronous Redis connection the host functions and caches share
//! (`palisade_streams::conn::LazySync`) on a Redis of the test's own: one late
//! answer (a starved machine, a Redis paused for a moment) is tried again on a
//! fresh connection and answered, so a rule's verdict is not degraded by it;
//! a Redis that stays hung is still an error, and soon.

use palisade_streams::Target;
use palisade_streams::conn::LazySync;
use palisade_tests::OwnRedis;
use std::time::{Duration, Instant};

fn ping(lazy: &LazySync) -> Result<String, String> {
    lazy.with_conn(|c| c.query::<String>(&redis::cmd("PING")))
}

#[test]
fn a_late_answer_is_tried_again_and_a_hung_redis_is_still_an_error() {
    let redis = OwnRedis::start();
    let lazy = LazySync::new(Target::Single(redis.url()), Duration::from_millis(150));
    assert_eq!(ping(&lazy).as_deref(), Ok("PONG"));

    // Paused for 250 ms: the first try times out at 150 ms, the second is answered.
    std::thread::scope(|s| {
        redis.pause();
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(250));
            redis.resume();
        });
        let started = Instant::now();
        let answer = ping(&lazy);
        assert_eq!(answer.as_deref(), Ok("PONG"), "after {:?}", started.elapsed());
    });

    // Hung for good: an error within two timeouts (and a little).
    redis.pause();
    let started = Instant::now();
    let answer = ping(&lazy);
    let took = started.elapsed();
    redis.resume();
    assert!(answer.is_err(), "{answer:?}");
    assert!(took < Duration::from_millis(1_000), "{took:?}");
    // Its reconnect failed too, so calls fail fast for a second; then it answers.
    let back = Instant::now();
    while ping(&lazy).is_err() {
        assert!(back.elapsed() < Duration::from_secs(3), "not answered again once back");
        std::thread::sleep(Duration::from_millis(100));
    }
}
