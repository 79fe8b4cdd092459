//! Waiting for a state that no event announces (a process answering, a
//! health status, a cluster's view of its slots): [`wait_until`] asks again
//! until the answer is right or a deadline passes, and then fails the test
//! with what it waited for and the last answer it got.
//!
//! Where an event can be awaited (a client's events, a server's handler, a
//! Redis subscription) the tests await it instead; this is for the rest.

use std::{fmt::Debug, time::Duration};

use tokio::time::Instant;

/// The pause between two checks: short against the deadlines (seconds),
/// long enough not to busy-loop on the two cores the tests share.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Calls `check` until it returns `Ok`, and returns that value. `check`
/// returns `Err(observed)` for "not yet"; if `deadline` passes first, the
/// test fails with `what` and the last `observed`. `check` runs at least
/// once, even with a zero deadline.
pub async fn wait_until<T, E: Debug>(
    what: impl std::fmt::Display,
    deadline: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let until = Instant::now() + deadline;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        assert!(
            Instant::now() < until,
            "{what}: not within {deadline:?}; last seen: {last:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// [`wait_until`] for a yes/no `check` that has nothing to report but
/// itself.
pub async fn wait_for(what: impl std::fmt::Display, deadline: Duration, mut check: impl AsyncFnMut() -> bool) {
    wait_until(
        what,
        deadline,
        async || if check().await { Ok(()) } else { Err("false") },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_ok_value() {
        let mut calls = 0;
        let got = wait_until("three calls", Duration::from_secs(5), async || {
            calls += 1;
            if calls == 3 { Ok(calls) } else { Err(calls) }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "never: not within 0ns; last seen: \"nope\"")]
    async fn fails_with_the_description_and_the_last_observation() {
        wait_until::<(), _>("never", Duration::ZERO, async || Err("nope")).await;
    }
}
