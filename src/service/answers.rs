//! Where a worker's answer to a request-reply goes (transcodes,
//! callbacks): straight to the waiter in the pending map when the request
//! was taken by this same instance's ingress ("direct reply", as a
//! message broker's direct reply-to), and on the requester's reply
//! partition otherwise. The request always crosses the bus, so any
//! instance of the role may take it; only the trip back skips the bus
//! when the waiter is here. The reply topics are request-reply and not
//! durable on either side of this choice (DESIGN.md, "Transcode
//! (request-reply)").

use std::sync::Arc;

use super::pending::{Answer, Pending};
use crate::bus::{Bus, BusError, Channel};

/// How an answer reached its requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Handed to a waiter of this instance.
    Direct,
    /// Published on the reply topic (the waiter is elsewhere, or gone).
    Topic,
}

impl Route {
    /// The label of `akm_answers_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Topic => "topic",
        }
    }
}

/// The answering side of one node's request-reply of `R`.
#[derive(Debug)]
pub struct Answers<R> {
    pub bus: Bus,
    /// This instance's waiters (its ingress's pending map).
    pub local: Arc<Pending<R>>,
}

impl<R> Clone for Answers<R> {
    fn clone(&self) -> Self {
        Answers {
            bus: self.bus.clone(),
            local: self.local.clone(),
        }
    }
}

impl<R: Channel + Answer> Answers<R> {
    /// Answer a request: to its waiter here, or on the reply topic
    /// (counted in `akm_answers_total` once it is there).
    pub async fn answer(&self, reply: R) -> Result<Route, BusError> {
        let route = match self.local.hand(reply) {
            None => Route::Direct,
            Some(reply) => {
                self.bus.send(&reply).await?;
                Route::Topic
            }
        };
        let topic = self.bus.topics().name(R::TOPIC);
        self.bus.metrics().answer(&topic, route.as_str());
        Ok(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Topic, Topics};
    use crate::durability::Durable;
    use crate::events::TranscodeReplied;

    fn reply(id: &str) -> TranscodeReplied {
        TranscodeReplied {
            request_id: id.into(),
            trace_id: "t".into(),
            reply_partition: 0,
            subject_id: String::new(),
            err_code: "0000".into(),
            detail: "转码成功".into(),
            codes: vec![],
        }
    }

    #[tokio::test]
    async fn a_waiter_here_gets_the_answer_directly_and_others_get_it_on_the_topic() {
        let dir = tempfile::tempdir().unwrap();
        let durable = Durable::open(dir.path()).unwrap();
        let bus =
            Bus::embedded(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
        let topic = bus.topics().name(Topic::TranscodeReply);
        let answers = Answers {
            bus: bus.clone(),
            local: Arc::new(Pending::<TranscodeReplied>::new(8)),
        };
        // the requester is this instance: handed over, nothing published
        let mut waiter = answers.local.register("here").unwrap();
        assert_eq!(answers.answer(reply("here")).await.unwrap(), Route::Direct);
        assert_eq!((&mut waiter.rx).await.unwrap().request_id, "here");
        assert_eq!(bus.count(&topic).await.unwrap(), 0);
        drop(waiter);
        // the requester is another instance: on the topic
        assert_eq!(
            answers.answer(reply("elsewhere")).await.unwrap(),
            Route::Topic
        );
        assert_eq!(bus.count(&topic).await.unwrap(), 1);
        assert!(answers.local.is_empty());
    }
}
