//! heketi's asynchronous operations, on tokio's clock: a busy server
//! (`429`) is asked again after its `Retry-After`, and a queued operation
//! (`202` with `Location: /queue/{id}`) is polled with backoff until `303`
//! (the result), `204` (done) or `500` (the error).

use std::time::Duration;

use anyhow::{Context, anyhow};
use hyper::{Method, StatusCode, header};
use tokio::time::{Instant, sleep};

use super::spinner::Spinner;
use super::{Api, Reply};

/// The first and the longest pause between polls.
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(2);
/// How often a busy server (`429`) is asked again.
const BUSY_RETRIES: u32 = 10;
/// The pause before asking a busy server again when it does not say, and
/// the bounds of what it may say, in seconds.
const BUSY_PAUSE: u64 = 5;
const BUSY_PAUSE_BOUNDS: (u64, u64) = (1, 60);

/// What a (possibly queued) operation ended with.
pub enum Outcome {
    /// A body: the direct answer, or the result a `303` pointed at.
    Body(Reply),
    /// Done, nothing to show (`204`).
    Done,
}

/// What the retry and poll loops need of a connection: one request and
/// its answer, and a `Location` as a path to request.
pub(super) trait Exchange {
    /// One request; any status comes back.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Reply>;

    /// A `Location` the server gave, as a path to request again.
    fn relative<'a>(&self, location: &'a str) -> &'a str;
}

impl Exchange for Api {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Reply> {
        Api::send(self, method, path, body).await
    }

    fn relative<'a>(&self, location: &'a str) -> &'a str {
        Api::relative(self, location)
    }
}

/// A request that may be queued: `200`/`201` answer at once, `202` is
/// followed to its end (`what` names it on the spinner, shown if
/// `progress`), `429` is retried after the server's `Retry-After`.
pub(super) async fn call(
    api: &impl Exchange,
    progress: bool,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    what: &str,
) -> anyhow::Result<Outcome> {
    let mut busy = 0;
    let reply = loop {
        let reply = api.send(method.clone(), path, body.clone()).await?;
        if reply.status == StatusCode::TOO_MANY_REQUESTS && busy < BUSY_RETRIES {
            busy += 1;
            let wait = reply
                .header(header::RETRY_AFTER)
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(BUSY_PAUSE)
                .clamp(BUSY_PAUSE_BOUNDS.0, BUSY_PAUSE_BOUNDS.1);
            sleep(Duration::from_secs(wait)).await;
            continue;
        }
        break reply;
    };
    match reply.status {
        StatusCode::ACCEPTED => {
            let location = reply
                .header(header::LOCATION)
                .context("the server accepted the request but gave no Location to poll")?
                .to_owned();
            wait(api, progress, &location, what).await
        }
        StatusCode::NO_CONTENT => Ok(Outcome::Done),
        s if s.is_success() => Ok(Outcome::Body(reply)),
        _ => Err(reply.refusal()),
    }
}

/// Poll `location` until the operation ends.
async fn wait(
    api: &impl Exchange,
    progress: bool,
    location: &str,
    what: &str,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut spinner = Spinner::new(progress, what);
    let mut pause = POLL_FIRST;
    let outcome = loop {
        let reply = api.send(Method::GET, api.relative(location), None).await?;
        match reply.status {
            StatusCode::OK
                if reply.header(header::HeaderName::from_static("x-pending")) == Some("true") =>
            {
                let until = Instant::now() + pause;
                while Instant::now() < until {
                    spinner.tick(started.elapsed());
                    sleep(Duration::from_millis(100).min(pause)).await;
                }
                pause = (pause * 2).min(POLL_MAX);
            }
            StatusCode::SEE_OTHER => {
                let target = reply
                    .header(header::LOCATION)
                    .context("the operation finished but the server gave no Location")?
                    .to_owned();
                let result = api.send(Method::GET, api.relative(&target), None).await?;
                break if result.status == StatusCode::OK {
                    Ok(Outcome::Body(result))
                } else {
                    Err(result.refusal())
                };
            }
            StatusCode::NO_CONTENT => break Ok(Outcome::Done),
            // Finished with a body of its own (heketi's server may
            // answer 200 without X-Pending).
            StatusCode::OK => break Ok(Outcome::Body(reply)),
            StatusCode::INTERNAL_SERVER_ERROR => {
                let text = reply.text();
                break Err(anyhow!(
                    "{what} failed: {}",
                    if text.is_empty() {
                        "no reason given"
                    } else {
                        &text
                    }
                ));
            }
            _ => break Err(reply.refusal()),
        }
    };
    spinner.clear();
    outcome
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use hyper::HeaderMap;
    use hyper::body::Bytes;
    use hyper::header::HeaderValue;
    // The script reads tokio's clock whatever the loops read.
    use tokio::time::Instant;

    use super::*;

    /// A server that answers from a script and writes down when each
    /// request came, on tokio's clock.
    struct Script {
        start: Instant,
        replies: RefCell<VecDeque<Reply>>,
        asked: RefCell<Vec<(Duration, Method, String)>>,
    }

    impl Script {
        fn new(replies: impl IntoIterator<Item = Reply>) -> Script {
            Script {
                start: Instant::now(),
                replies: RefCell::new(replies.into_iter().collect()),
                asked: RefCell::default(),
            }
        }

        /// When each request came, in milliseconds from the start.
        fn times(&self) -> Vec<u128> {
            self.asked
                .borrow()
                .iter()
                .map(|(t, ..)| t.as_millis())
                .collect()
        }

        /// The paths asked for, in order.
        fn paths(&self) -> Vec<String> {
            self.asked
                .borrow()
                .iter()
                .map(|(.., p)| p.clone())
                .collect()
        }

        /// Replies never asked for.
        fn left(&self) -> usize {
            self.replies.borrow().len()
        }
    }

    impl Exchange for Script {
        async fn send(
            &self,
            method: Method,
            path: &str,
            _body: Option<Vec<u8>>,
        ) -> anyhow::Result<Reply> {
            self.asked
                .borrow_mut()
                .push((self.start.elapsed(), method, path.to_owned()));
            Ok(self
                .replies
                .borrow_mut()
                .pop_front()
                .expect("the script has a reply for every request"))
        }

        fn relative<'a>(&self, location: &'a str) -> &'a str {
            location
        }
    }

    fn reply(status: u16, headers: &[(&'static str, &str)], body: &str) -> Reply {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: Bytes::from(body.to_owned()),
        }
    }

    fn busy(retry_after: Option<&str>) -> Reply {
        match retry_after {
            Some(s) => reply(429, &[("retry-after", s)], "busy"),
            None => reply(429, &[], "busy"),
        }
    }

    async fn post(script: &Script) -> anyhow::Result<Outcome> {
        call(script, false, Method::POST, "/volumes", None, "creating").await
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_server_is_asked_again_when_it_says_within_bounds() {
        let script = Script::new([
            busy(Some("0")),
            busy(Some("120")),
            busy(None),
            busy(Some("soon")),
            busy(Some(" 3 ")),
            reply(201, &[], "{}"),
        ]);
        let Outcome::Body(done) = post(&script).await.unwrap() else {
            panic!("the answer's body");
        };
        assert_eq!(done.status, StatusCode::CREATED);
        // 0 is raised to 1 s, 120 lowered to 60 s; none or a date: 5 s.
        assert_eq!(
            script.times(),
            [0, 1_000, 61_000, 66_000, 71_000, 74_000],
            "{:?}",
            script.paths()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_busy_eleven_times_is_given_up() {
        let script = Script::new(
            std::iter::repeat_with(|| busy(Some("2")))
                .take(12)
                .chain([reply(201, &[], "{}")]),
        );
        let err = post(&script).await.err().expect("given up");
        assert_eq!(err.to_string(), "busy (429 Too Many Requests)");
        // The first request and ten retries, 2 s apart; then no more.
        assert_eq!(
            script.times(),
            (0..=10).map(|n| n * 2_000).collect::<Vec<_>>()
        );
        assert_eq!(script.left(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_operation_is_polled_with_pauses_doubling_up_to_two_seconds() {
        let pending = || reply(200, &[("x-pending", "true")], "");
        let script = Script::new(
            [reply(202, &[("location", "/queue/1")], "")]
                .into_iter()
                .chain(std::iter::repeat_with(pending).take(8))
                .chain([
                    reply(303, &[("location", "/volumes/v")], ""),
                    reply(200, &[], r#"{"id": "v"}"#),
                ]),
        );
        let Outcome::Body(result) = post(&script).await.unwrap() else {
            panic!("the result's body");
        };
        assert_eq!(result.text(), r#"{"id": "v"}"#);
        assert_eq!(
            script.times(),
            [
                0, 0, 100, 300, 700, 1_500, 3_100, 5_100, 7_100, 9_100, 9_100
            ]
        );
        let paths = script.paths();
        assert_eq!(paths[0], "/volumes");
        assert!(paths[1..10].iter().all(|p| p == "/queue/1"), "{paths:?}");
        assert_eq!(paths[10], "/volumes/v");
        assert_eq!(script.left(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_operation_ends_done_or_failed_at_once() {
        let queued = || reply(202, &[("location", "/queue/1")], "");
        let script = Script::new([queued(), reply(204, &[], "")]);
        assert!(matches!(post(&script).await.unwrap(), Outcome::Done));
        assert_eq!(script.times(), [0, 0]);

        let script = Script::new([queued(), reply(500, &[], "no space left")]);
        let err = post(&script).await.err().expect("failed");
        assert_eq!(err.to_string(), "creating failed: no space left");
        let script = Script::new([queued(), reply(500, &[], "")]);
        let err = post(&script).await.err().expect("failed");
        assert_eq!(err.to_string(), "creating failed: no reason given");
        assert_eq!(script.times(), [0, 0]);
    }
}
