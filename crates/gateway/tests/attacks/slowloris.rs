//! Issue 14, class 10: slow clients cannot take the gateway down. A request
//! head or body that trickles is cut off, connections are capped (the
//! oldest idle one closed to make room, so slow clients cannot hold every
//! slot), and a key has a bounded number of requests in flight. Each test
//! runs the same attack against the gateway with the limits off, as the old
//! server was, to show what the limit changes.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn no_limits(c: &mut GatewayConfig) {
    c.header_timeout = None;
    c.body_timeout = None;
    c.max_connections = usize::MAX;
    c.max_requests_per_key = usize::MAX;
}

/// Sends `head` a byte every `gap`, then waits, until the server closes the
/// connection or `give_up` passes; how long it stayed open, or None.
async fn trickle(addr: SocketAddr, head: &[u8], gap: Duration, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    for b in head {
        if c.write_all(&[*b]).await.is_err() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(gap).await;
        if started.elapsed() > give_up {
            return None;
        }
        // Closed by the server? A read that returns at once says so.
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), c.read(&mut buf)).await {
            let _ = n;
            return Some(started.elapsed());
        }
    }
    let mut buf = [0u8; 512];
    let left = give_up.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, c.read(&mut buf)).await {
        Ok(_) => Some(started.elapsed()),
        Err(_) => None,
    }
}

const SLOW_HEAD: &[u8] = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_sent_a_byte_at_a_time_is_cut_off() {
    // Without the limit the connection is held for as long as the client likes.
    let open = Env::start_tuned(true, no_limits).await;
    let held = trickle(open.gateway, SLOW_HEAD, Duration::from_millis(100), Duration::from_secs(4)).await;
    assert_eq!(held, None, "without a header timeout the slow head is still being waited for");

    let env = Env::start_tuned(true, |c| c.header_timeout = Some(Duration::from_secs(1))).await;
    let held = trickle(env.gateway, SLOW_HEAD, Duration::from_millis(100), Duration::from_secs(4)).await;
    let held = held.expect("the slow head was never cut off");
    assert!(held < Duration::from_secs(3), "cut off after {held:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_is_cut_off() {
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    let body_trickle = |addr: SocketAddr| {
        let head = head.clone();
        async move {
            let started = Instant::now();
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            c.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            for _ in 0..40 {
                if c.write_all(b" ").await.is_err() {
                    break;
                }
                let mut buf = [0u8; 1024];
                match tokio::time::timeout(Duration::from_millis(100), c.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        answer.extend_from_slice(&buf[..n]);
                        break;
                    }
                    Err(_) => {}
                }
            }
            (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
        }
    };
    let open = Env::start_tuned(true, no_limits).await;
    let (answer, _) = body_trickle(open.gateway).await;
    assert_eq!(answer, "", "without a body timeout the slow body is still being read after 4 s");

    let env = Env::start_tuned(true, |c| c.body_timeout = Some(Duration::from_secs(1))).await;
    let (answer, took) = body_trickle(env.gateway).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(env.seen.lock().unwrap().bodies.is_empty());
}

/// Opens `n` connections that each send half a request head and then a byte
/// every 200 ms; returns how many the server still holds after `after`.
async fn slow_crowd(addr: SocketAddr, n: usize, after: Duration) -> usize {
    let mut tasks = Vec::new();
    for _ in 0..n {
        tasks.push(tokio::spawn(async move {
            let Ok(mut c) = tokio::net::TcpStream::connect(addr).await else { return false };
            if c.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\n").await.is_err() {
                return false;
            }
            let started = Instant::now();
            while started.elapsed() < after {
                if c.write_all(b"X").await.is_err() {
                    return false;
                }
                let mut buf = [0u8; 256];
                if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf)).await {
                    // EOF, reset, or an answer (503): no longer held.
                    let _ = r;
                    return false;
                }
            }
            true
        }));
    }
    let mut held = 0;
    for t in tasks {
        held += usize::from(t.await.unwrap());
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_slow_connections_do_not_lock_out_a_normal_client() {
    // The old server: every slow connection is held, without bound (each a
    // descriptor and a task, until the process runs out).
    let open = Env::start_tuned(true, no_limits).await;
    let held = slow_crowd(open.gateway, 100, Duration::from_secs(3)).await;
    assert_eq!(held, 100, "without limits every slow connection is held");

    // A header timeout longer than the attack: only the cap is at work here
    // (the timeout has its own test above).
    let env = Env::start_tuned(true, |c| {
        c.max_connections = 16;
        c.header_timeout = Some(Duration::from_secs(30));
    })
    .await;
    let gateway = env.gateway;
    let crowd = tokio::spawn(slow_crowd(gateway, 100, Duration::from_secs(3)));
    // Let the crowd fill the table, then come as a normal client.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    for _ in 0..3 {
        let r = client
            .post(format!("http://{gateway}/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&chat("gpt-4o", "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "a normal client was not served during the attack");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let held = crowd.await.unwrap();
    assert!(held <= 16, "{held} slow connections held at once, over the cap of 16");
    assert!(held >= 10, "only {held} held: something other than the cap closed them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_cannot_hold_more_than_its_share_of_requests() {
    use futures_util::StreamExt;
    let stream_body = serde_json::json!({"model": "gpt-4o-mini", "stream": true, "messages": []});
    let start_stream = |env: &Env, key: &str| {
        reqwest::Client::new()
            .post(format!("http://{}/v1/chat/completions", env.gateway))
            .bearer_auth(key)
            .json(&stream_body)
            .send()
    };
    // Without the limit a third request is served while two are held open.
    let open = Env::start_tuned(true, no_limits).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = start_stream(&open, KEY).await.unwrap().bytes_stream();
        s.next().await.unwrap().unwrap();
        held.push(s);
    }
    assert_eq!(start_stream(&open, KEY).await.unwrap().status(), 200);
    drop(held);

    let env = Env::start_tuned(true, |c| c.max_requests_per_key = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = start_stream(&env, KEY).await.unwrap().bytes_stream();
        s.next().await.unwrap().unwrap();
        held.push(s);
    }
    let third = start_stream(&env, KEY).await.unwrap();
    assert_eq!(third.status(), 429);
    assert!(third.text().await.unwrap().contains("max_requests_per_key"));
    // Another key is not held up by the first.
    assert_eq!(start_stream(&env, CI_KEY).await.unwrap().status(), 200);
    // Once a stream ends, its slot is free again.
    drop(held.pop());
    let mut freed = false;
    for _ in 0..50 {
        if start_stream(&env, KEY).await.unwrap().status() == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "a finished request kept its slot");
}

/// A key holder's slow bodies count against its share on every route, not
/// only the model routes (the old server read them for as long as they took).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_on_any_route_count_against_the_key() {
    let env = Env::start_tuned(true, |c| c.max_requests_per_key = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = tokio::net::TcpStream::connect(env.gateway).await.unwrap();
        let head = format!(
            "POST /api/telemetry HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 100\r\n\r\n"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = env.post("/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let other = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", env.gateway))
        .bearer_auth(CI_KEY)
        .json(&chat("gpt-4o-mini", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200, "another key is served");
    drop(held);
}
