//! A turn's time limit that stops while the turn waits for a person.
//!
//! `AGENT_TIMEOUT_SECS` bounds the agent's own work (model calls, tool calls); a turn paused on
//! an approval card waits for the user under the approval's own deadline instead, so reading
//! the card carefully never costs the turn its time.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
enum State {
    Running { deadline: Instant },
    Paused { remaining: Duration },
}

pub struct TurnClock {
    state: watch::Sender<State>,
}

/// The clock is stopped until this is dropped.
pub struct Paused<'a> {
    clock: &'a TurnClock,
}

/// The time limit ran out.
#[derive(Debug)]
pub struct Elapsed;

impl TurnClock {
    pub fn start(limit: Duration) -> Self {
        TurnClock { state: watch::Sender::new(State::Running { deadline: Instant::now() + limit }) }
    }

    /// Stops the clock until the returned guard is dropped.
    pub fn pause(&self) -> Paused<'_> {
        self.state.send_modify(|s| {
            if let State::Running { deadline } = *s {
                *s = State::Paused { remaining: deadline.saturating_duration_since(Instant::now()) };
            }
        });
        Paused { clock: self }
    }

    /// Runs `work` until it completes or the clock (counting only unpaused time) runs out.
    pub async fn limit<F: Future>(&self, work: F) -> Result<F::Output, Elapsed> {
        let mut state = self.state.subscribe();
        let mut work = std::pin::pin!(work);
        loop {
            let current = *state.borrow_and_update();
            match current {
                State::Running { deadline } => tokio::select! {
                    biased;
                    out = &mut work => return Ok(out),
                    _ = state.changed() => {}
                    () = tokio::time::sleep_until(deadline) => {
                        if matches!(*state.borrow(), State::Running { deadline: d } if d <= Instant::now()) {
                            return Err(Elapsed);
                        }
                    }
                },
                State::Paused { .. } => tokio::select! {
                    biased;
                    out = &mut work => return Ok(out),
                    _ = state.changed() => {}
                },
            }
        }
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.clock.state.send_modify(|s| {
            if let State::Paused { remaining } = *s {
                *s = State::Running { deadline: Instant::now() + remaining };
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn time_spent_paused_does_not_count() {
        let ms = Duration::from_millis;
        // 200 ms of work under a 1 s limit, with 1.5 s paused in between.
        let clock = TurnClock::start(ms(1000));
        let work = async {
            tokio::time::sleep(ms(100)).await;
            {
                let _waiting_for_a_person = clock.pause();
                tokio::time::sleep(ms(1500)).await;
            }
            tokio::time::sleep(ms(100)).await;
            "done"
        };
        assert_eq!(clock.limit(work).await.unwrap(), "done");

        let clock = TurnClock::start(ms(50));
        let slow = tokio::time::sleep(ms(5000));
        assert!(clock.limit(slow).await.is_err());
    }
}
